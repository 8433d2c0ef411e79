"""The pretraining stage's work on the deterministic compute axis: results.json's ``compute`` (engine/compute.py).

What is counted, and where each count lives so that a resumed run reports what an uninterrupted one does:

- trained samples: ``progress.samples_seen`` (global over ranks, checkpointed by the core);
- scored samples: the teacher's ``samples_scored`` (scoring passes and refreshes, global, in its state);
- learnability's reference model: the samples it trained on (``PretrainProgress.reference_trained_samples``: its
  whole training, also when reused from the cache) and its scoring forwards (the rows of the teacher's reference
  losses x ``teaching.reference_draws``). Every rank trains the same reference model, so it is counted once: the
  record does not depend on the number of ranks;
- validation forwards: ``PretrainProgress.eval_samples``; probe forwards: the stage's ``probe_samples``.

The FLOPs of one sample are measured once, at set-up, on a dummy micro-batch of the run's shapes: the same numbers
on every start of a run, and (the reference model having the learner's architecture) for the reference model too.
"""

import logging
from dataclasses import dataclass

import torch

from ..engine.compute import SampleFlops, WorkCounts, compute_record, format_flops, measure_sample_flops
from ..engine.progress import Progress
from ..engine.runtime import autocast
from ..models.domains import DOMAINS, data_modalities

log = logging.getLogger(__name__)


@dataclass
class PretrainProgress(Progress):
    """Pretraining adds the work counts that no other checkpointed state holds."""

    eval_samples: int = 0  # samples through validation forwards (evaluate), over ranks
    probe_samples: int = 0  # images encoded by the probes (probing.py), over ranks
    reference_trained_samples: int = 0  # learnability: samples through the reference model's training steps


def dummy_batch(model, batch_size: int, device: torch.device, out_domains: list[str]) -> dict[str, torch.Tensor]:
    """Zeros in the shapes of a pretraining batch for ``model`` (its inputs and its outputs' targets): rgb B x 3 x S x
    S, depth B x 1 x S x S, semseg B x S/4 x S/4 (long). FLOPs depend on shapes only, not on values."""
    size, batch = model.image_size, {}
    for d in data_modalities(list(model.in_domains), list(out_domains)):
        side = size // DOMAINS[d].stride_level
        if d == "semseg":
            batch[d] = torch.zeros(batch_size, side, side, dtype=torch.long, device=device)
        else:
            batch[d] = torch.zeros(batch_size, DOMAINS[d].channels, side, side, device=device)
    return batch


def measure_pretrain_flops(model, loss_fn, cfg, device: torch.device, precision: str, world_size: int) -> SampleFlops:
    """FLOPs per sample of one training step and of one scoring forward of ``model`` (MultiMAE), as the stage runs
    them: the model's own random masks (a fixed generator: the visible-token count, hence the FLOPs, is the same for
    every draw), the run's precision, the objective's per-sample losses. One micro-batch of the run's size;
    leaves the model, its gradients and every random stream as they were."""
    batch_size = max(1, cfg.trainer.micro_batch_size or cfg.trainer.batch_size // world_size)
    batch = dummy_batch(model, batch_size, device, list(cfg.model.out_domains))
    inputs = {d: batch[d] for d in model.in_domains}

    def loss_of_batch() -> torch.Tensor:
        with autocast(precision, device):
            preds, masks = model(inputs, generator=torch.Generator().manual_seed(0))
        return loss_fn.objective(loss_fn(preds, batch, masks)).mean()

    flops = measure_sample_flops(model, loss_of_batch, batch_size, devices=[device])
    log.debug("measured FLOPs per sample on a micro-batch of %d: %s", batch_size, flops)
    return flops


def work_counts(trainer) -> WorkCounts:
    """The run's sample counts so far, from checkpointed state (see the module docstring)."""
    p, teacher = trainer.progress, trainer.teacher
    return WorkCounts(trained=p.samples_seen, scored=teacher.samples_scored,
                      reference_trained=getattr(p, "reference_trained_samples", 0),
                      reference_scored=teacher.reference_samples_scored,
                      eval=getattr(p, "eval_samples", 0), probe=int(getattr(trainer, "probe_samples", 0)))


def compute_details(trainer) -> dict:
    """results.json's ``compute`` of a pretraining run."""
    return compute_record(work_counts(trainer), trainer.sample_flops)


def describe_flops(flops: SampleFlops) -> str:
    """The plan printout's line on the compute axis."""
    return (f"compute per sample: {format_flops(flops.trained)} to train (forward + backward), "
            f"{format_flops(flops.scored)} to score (forward); the run's total goes to results.json 'compute'")
