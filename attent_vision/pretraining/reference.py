"""The reference model of ``teaching.score=learnability``: the learner's architecture, trained on a holdout of the
training split until its loss stops falling.

Its loss on a training sample it has never seen estimates the sample's irreducible loss (RHO-LOSS): what no model of
this family fits, such as sensor noise. The holdout is ``teaching.reference_holdout`` of the training split
(builders.py :func:`reference_holdout`), left out of the learner's training and scoring: disjoint from the samples
the reference scores, and from the validation split, whose scenes measure the learner's loss. The model is made
once, before the first selection; the teacher runs its scoring passes with it (``teaching.reference_draws`` draws,
through the learner's ``per_task_losses(batch, model=...)``), keeps those losses (and the checkpoint with them), and
drops it. The learner calls :func:`reference_model` inside its scoring phase, so benchmarks count its seconds.

It trains as a run of the shared loop core inside the pretraining run, in ``<run>/reference/``
(reference_stage.py: check windows of ``teaching.reference_check_every`` steps as its epochs, a plateau rule as its
early stop, at most ``teaching.reference_max_steps`` steps). A pretraining run stopped while its reference trained
ends as interrupted without a checkpoint of its own (engine/stage.py ``StoppedInHook``); its rerun resumes from its
last checkpoint and the reference from the reference's, so it ends with the same reference as an uninterrupted run.

A trained model is cached under the data cache and reused by every run that would train the same one
(reference_cache.py); ``teaching.reference_cache=false`` trains it in every run.

Reproducible and rank-independent: the global RNGs are forked and seeded for the block (so training or loading the
reference neither depends on nor shifts the learner's random stream), its sample order comes from (seed, pass), and
under DDP the ranks train it together like any run of the core, then hold rank 0's weights. With the cache, rank 0
alone reads and writes it and hands the weights to the others.
"""

import logging
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
import torch.distributed as torch_dist

from ..engine.distributed import DistEnv, broadcast_object
from ..engine.results import DIVERGED, INTERRUPTED
from ..engine.runtime import resolve_precision
from ..engine.stage import StoppedInHook
from ..errors import DataError
from ..seeds import STREAM_REFERENCE, derive_seed, seeded_global_rngs
from .builders import build_pretrain_model
from .reference_cache import cache_path, digest_of, load_cached, reference_key, save_cached, warn_unusable
from .reference_stage import IMPROVEMENT, SUBFOLDER, PlateauRule, ReferenceTrainer, reference_batch

log = logging.getLogger(__name__)

__all__ = ["PlateauRule", "load_or_train_reference_model", "reference_model", "train_reference"]


def reference_model(stage) -> tuple[torch.nn.Module, int, dict]:
    """learnability's reference model for the pretraining stage ``stage`` (its Learner's ``reference_model``):
    reused from the cache, or trained in ``<run>/reference/`` (resumed there when a stopped run left it half
    trained). Returns what :func:`load_or_train_reference_model` returns. Raises ``StoppedInHook`` when a signal or
    ``trainer.stop_after_steps`` stopped its training."""
    return load_or_train_reference_model(stage.cfg, stage.views["reference"], Path(stage.run_dir) / SUBFOLDER,
                                         stage.dist, outer=stage)


def load_or_train_reference_model(cfg, view, run_dir, dist: DistEnv, outer=None) -> tuple[torch.nn.Module, int, dict]:
    """The reference model of a run of settings ``cfg``: loaded from the cache when a run with the same key trained
    it, else trained on ``view`` (the holdout view, augmented) in the run folder ``run_dir``
    (:func:`train_reference`), then cached. ``outer``: the stage it runs in (None: a run of its own).

    Returns (the model in evaluation mode, the samples it trained on in this call, the same on every rank, 0 when it
    came from the cache, info). info: {"steps": the optimizer steps it was trained for, "stopped": "plateau" |
    "max_steps" (as when it was trained, also when reused: a run's records do not depend on which run of its sweep
    trained the model), "final_loss": the mean training loss of its last check window, "trained_samples": the
    samples its training took, in all calls or in the run that cached it (for a compute account that charges every
    run the reference's full cost)}."""
    device = dist.device
    path = digest = key = entry = None
    if cfg.teaching.reference_cache and dist.is_main:
        key = reference_key(cfg, view, resolve_precision(cfg.trainer.precision, device),
                            reference_batch(cfg, len(view), dist.world_size))
        if key is not None:
            digest = digest_of(key)
            path = cache_path(cfg, digest)
            entry = load_cached(path, digest)
    with reference_rngs(cfg.trainer.seed, device):
        model = loaded = None
        if broadcast_object(entry is not None, dist):
            model = build_pretrain_model(cfg).to(device)
            loaded = broadcast_object(entry is not None and load_weights(model, entry, path), dist)
        if loaded:
            trained = 0
            info = broadcast_object(dict(entry["info"]) if dist.is_main else None, dist)
        else:
            model, trained, info = train_reference(cfg, view, run_dir, dist, outer)
        if dist.distributed:  # identical on every rank in exact arithmetic (or loaded on rank 0 only): make it so
            for tensor in model.state_dict().values():
                torch_dist.broadcast(tensor, src=0)
    if loaded and dist.is_main:
        log.info("reference model: reused %s (trained %d steps, stopped by %s, final window loss %.4f)", path,
                 info["steps"], info["stopped"], info["final_loss"])
    elif path is not None and save_cached(path, digest, key, model.state_dict(), info):
        log.info("reference model: cached as %s for runs with the same data, model and settings", path)
    return model.eval(), trained, info


def train_reference(cfg, view, run_dir, dist: DistEnv, outer=None) -> tuple[torch.nn.Module, int, dict]:
    """Train (or finish training) the reference model in ``run_dir`` through the loop core (reference_stage.py);
    returns (model, samples trained in this call, info) as :func:`load_or_train_reference_model`."""
    trainer = ReferenceTrainer(cfg, view, run_dir, dist, outer)
    before = trainer.progress.samples_seen  # > 0 when it resumed
    try:
        results = trainer.run()
    except DataError as e:  # e.g. every holdout sample of a window failed to load
        raise DataError(f"learnability's reference model (its holdout: teaching.reference_holdout): {e}") from None
    if results["status"] == DIVERGED:
        step = (results.get("diverged") or {}).get("step")
        raise DataError(f"teaching.score=learnability: the reference model's training loss is not finite at step "
                        f"{step} (it diverged; {run_dir}); lower optim.blr (or optim.lr), or use teaching.score=loss")
    if results["status"] == INTERRUPTED:
        raise StoppedInHook(f"the reference model's training was stopped at step {results['optimizer_steps']}")
    info = trainer.info()
    t = cfg.teaching
    why = (f"its loss plateaued: {t.reference_patience} window(s) of {t.reference_check_every} steps in a row without "
           f"a {IMPROVEMENT:.0%} improvement" if info["stopped"] == "plateau"
           else f"it reached teaching.reference_max_steps={t.reference_max_steps}")
    if dist.is_main:
        log.info("reference model: %d steps on %d holdout samples, stopped because %s; final window loss %.4f",
                 info["steps"], len(view), why, info["final_loss"])
    return trainer.model.eval(), info["trained_samples"] - before, info


@contextmanager
def reference_rngs(seed: int, device: torch.device):
    """The reference model's own seeded global RNGs (CPU, and the device's on CUDA), restored on exit."""
    cuda_rng = torch.random.fork_rng(devices=[device]) if device.type == "cuda" else nullcontext()
    with seeded_global_rngs(derive_seed(seed, STREAM_REFERENCE)), cuda_rng:
        if device.type == "cuda":
            torch.cuda.manual_seed(derive_seed(seed, STREAM_REFERENCE, 1))
        yield


def load_weights(model: torch.nn.Module, entry: dict, path) -> bool:
    """Load a cache entry's weights into ``model``; False (with a warning) when they do not fit it."""
    try:
        model.load_state_dict(entry["state_dict"])
    except (RuntimeError, KeyError, TypeError) as e:
        warn_unusable(path, e)
        return False
    return True
