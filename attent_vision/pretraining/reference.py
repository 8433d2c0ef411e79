"""The reference model of ``teaching.score=learnability``: the learner's architecture, trained briefly on holdout data.

Its loss on a training sample it has never seen estimates the sample's irreducible loss (RHO-LOSS): what no model of
this family fits, such as sensor noise. It is trained once, before the first selection, for
``teaching.reference_epochs`` epochs on the validation split (under the training augmentation and masking), used for
one inference-mode pass over the training samples, and dropped; the teacher keeps its per-task losses (and the
checkpoint with them). Its seconds are charged to the scoring phase, so benchmarks count them.

Reproducible and rank-independent: the global RNGs are forked and seeded for the block (so training the reference
neither depends on nor shifts the learner's random stream), the sample order comes from (seed, epoch), and under
DDP every rank trains the same model on the same data and then takes rank 0's weights, so all ranks score alike.
"""

import logging
import math
from contextlib import nullcontext

import torch
import torch.distributed as torch_dist

from ..data.skipping import collate_skipping_bad
from ..engine.bars import progress_bar
from ..engine.distributed import DistEnv
from ..engine.loaders import to_device
from ..engine.optim import build_optimizer, build_scheduler
from ..engine.runtime import autocast
from ..seeds import STREAM_REFERENCE, derive_seed, generator, seeded_global_rngs
from .builders import MODALITIES

log = logging.getLogger(__name__)


def train_reference_model(cfg, build_model, loss_fn, view, device: torch.device, precision: str,
                          dist: DistEnv, show_bar: bool = False) -> tuple[torch.nn.Module, int]:
    """Train a fresh ``build_model()`` on ``view`` (the holdout split, augmented) for ``teaching.reference_epochs``
    with the run's optimizer settings (``show_bar``: a progress bar over its steps). Returns the model in evaluation
    mode and the samples it trained on over all epochs (those that loaded; the same on every rank): its work."""
    epochs, seed = cfg.teaching.reference_epochs, cfg.trainer.seed
    # The run's global batch, in micro-batches of the run's size: the same model whatever the number of ranks.
    batch = max(1, min(cfg.trainer.batch_size, len(view)))
    # Per-rank micro-batches like training's (every rank trains the whole reference: no more memory than training).
    micro = max(1, min(cfg.trainer.micro_batch_size or math.ceil(batch / dist.world_size), batch))
    steps_per_epoch = math.ceil(len(view) / batch)
    # bf16 autocast on GPUs; fp16 would need a gradient scaler for a model that lives a few epochs: use fp32.
    precision = "bf16" if precision == "bf16" else "fp32"
    cuda_rng = torch.random.fork_rng(devices=[device]) if device.type == "cuda" else nullcontext()
    total, count, trained = 0.0, 0, 0
    with seeded_global_rngs(derive_seed(seed, STREAM_REFERENCE)), cuda_rng:
        if device.type == "cuda":
            torch.cuda.manual_seed(derive_seed(seed, STREAM_REFERENCE, 1))
        model = build_model().to(device)
        optimizer = build_optimizer(model, cfg.optim, batch, device)
        scheduler = build_scheduler(optimizer, epochs * steps_per_epoch, steps_per_epoch, cfg.optim.min_lr)
        model.train()
        step = 0
        bar = progress_bar(total=epochs * steps_per_epoch, desc="reference model", show=show_bar)
        for epoch in range(epochs):
            order = torch.randperm(len(view), generator=generator(seed, STREAM_REFERENCE, epoch)).tolist()
            total, count = 0.0, 0
            for start in range(0, len(order), batch):
                keys = order[start:start + batch]
                optimizer.zero_grad(set_to_none=True)
                for chunk in range(0, len(keys), micro):
                    items = collate_skipping_bad([view[(i, epoch, 1.0)] for i in keys[chunk:chunk + micro]])
                    if "index" not in items:
                        continue
                    inputs = to_device(items, device, MODALITIES)
                    with autocast(precision, device):
                        preds, masks = model(inputs, task_masks=items["masks"])
                    per_sample = loss_fn.objective(loss_fn(preds, inputs, masks))
                    (per_sample.sum() / len(keys)).backward()  # the mean over the whole step's batch
                    total, count = total + float(per_sample.detach().sum()), count + per_sample.numel()
                    trained += per_sample.numel()
                if cfg.optim.clip_grad:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.clip_grad)
                optimizer.step()
                step += 1
                scheduler.step_update(step)
                bar.update(1)
            log.debug("reference model epoch %d/%d: loss %.4f", epoch + 1, epochs, total / max(count, 1))
        bar.close()
        if dist.distributed:  # identical on every rank in exact arithmetic; make it identical in fact
            for p in model.state_dict().values():
                torch_dist.broadcast(p, src=0)
    log.info("reference model: %d epochs on %d holdout samples (last epoch's loss %.4f)", epochs, len(view),
             total / max(count, 1))
    return model.eval(), trained
