"""The reference model of ``teaching.score=learnability``: the learner's architecture, trained on a holdout of the
training split until its loss stops falling.

Its loss on a training sample it has never seen estimates the sample's irreducible loss (RHO-LOSS): what no model of
this family fits, such as sensor noise. The holdout is ``teaching.reference_holdout`` of the training split
(builders.py :func:`reference_holdout`), left out of the learner's training and scoring: disjoint from the samples
the reference scores, and from the validation split, whose scenes measure the learner's loss. The model is trained
once, before the first selection, used for the passes over the training samples that give the reference losses,
and dropped; the teacher keeps those losses (and the checkpoint with them). Its seconds are charged to the scoring
phase, so benchmarks count them.

Trained in optimizer steps, not epochs (a holdout of 64 scenes at batch 64 is one step an epoch): the holdout's
samples stream through in seeded permutations, one per pass (each pass draws fresh crops and masks), every step
taking the next global batch. Every ``teaching.reference_check_every`` steps, the mean training loss of that window
is compared with the best window so far; training stops when ``teaching.reference_patience`` windows in a row did not
beat it by more than 1% (a plateau), or at ``teaching.reference_max_steps``. The learning rate warms up linearly over
the first window, then stays constant: the run's length is not known in advance, so there is no end to anneal to.

A trained model is cached under the data cache and reused by every run that would train the same one
(reference_cache.py); ``teaching.reference_cache=false`` trains it in every run.

Reproducible and rank-independent: the global RNGs are forked and seeded for the block (so training or loading the
reference neither depends on nor shifts the learner's random stream), the sample order comes from (seed, pass), and
under DDP every rank trains the same model on the same data, decides to stop on rank 0's window losses, and then
takes rank 0's weights, so all ranks score alike. With the cache, rank 0 alone reads and writes it and hands the
weights to the others.
"""

import itertools
import logging
import math
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

from ..data.skipping import BadSampleLog, collate_skipping_bad, nothing_loaded
from ..engine.bars import progress_bar
from ..engine.distributed import DistEnv, broadcast_object
from ..engine.loaders import to_device
from ..engine.optim import build_optimizer
from ..engine.runtime import autocast
from ..errors import DataError
from ..seeds import STREAM_REFERENCE, derive_seed, generator, seeded_global_rngs
from ..teaching.scoring_pass import run_scoring_pass
from .builders import MODALITIES, build_pretrain_model
from .reference_cache import cache_path, digest_of, load_cached, reference_key, save_cached, warn_unusable

log = logging.getLogger(__name__)

IMPROVEMENT = 0.01  # a window must beat the best window so far by more than this share to count as progress


@dataclass
class PlateauRule:
    """Stop after ``patience`` check windows in a row whose mean loss did not beat the best window by more than
    :data:`IMPROVEMENT` (relative). A window without a finite loss (nothing loaded) is no improvement."""

    patience: int
    best: float = math.inf
    stale: int = 0

    def plateaued(self, window_loss: float) -> bool:
        """Record one window's mean loss; True when training should stop."""
        if window_loss < self.best * (1 - IMPROVEMENT):
            self.best, self.stale = window_loss, 0
        else:
            self.stale += 1
        return self.stale >= self.patience


def load_or_train_reference_model(cfg, build_model, loss_fn, view, device: torch.device, precision: str,
                                  dist: DistEnv, show_bar: bool = False) -> tuple[torch.nn.Module, int, dict]:
    """The reference model of this run: loaded from the cache when a run with the same key trained it, else a fresh
    ``build_model()`` trained on ``view`` (the holdout view, augmented) to a plateau with the run's optimizer
    settings (``show_bar``: a progress bar over its steps), then cached.

    Returns (the model in evaluation mode, the samples it trained on in this call: those that loaded, the same on
    every rank, 0 when it came from the cache, info). info: {"steps": the optimizer steps it was trained for,
    "stopped": "plateau" | "max_steps" (as when it was trained, also when reused: a run's records do not depend on
    which run of its sweep trained the model), "final_loss": the mean training loss of its last check window,
    "trained_samples": the samples its training took, in this call or in the run that cached it (for a compute
    account that charges every run the reference's full cost)}."""
    # bf16 autocast on GPUs; fp16 would need a gradient scaler for a model that lives a few hundred steps: use fp32.
    precision = "bf16" if precision == "bf16" else "fp32"
    path = digest = key = entry = None
    if cfg.teaching.reference_cache and dist.is_main:
        key = reference_key(cfg, view, precision)
        if key is not None:
            digest = digest_of(key)
            path = cache_path(cfg, digest)
            entry = load_cached(path, digest)
    with reference_rngs(cfg.trainer.seed, device):
        model = build_model().to(device)
        loaded = broadcast_object(entry is not None and load_weights(model, entry, path), dist)
        if loaded:
            trained = 0
            info = broadcast_object(dict(entry["info"]) if dist.is_main else None, dist)
        else:
            trained, info = train_to_plateau(cfg, model, loss_fn, view, device, precision, dist, show_bar)
        if dist.distributed:  # identical on every rank in exact arithmetic (or loaded on rank 0 only): make it so
            for tensor in model.state_dict().values():
                torch_dist.broadcast(tensor, src=0)
    if loaded and dist.is_main:
        log.info("reference model: reused %s (trained %d steps, stopped by %s, final window loss %.4f)", path,
                 info["steps"], entry["info"]["stopped"], info["final_loss"])
    elif path is not None and save_cached(path, digest, key, model.state_dict(), info):
        log.info("reference model: cached as %s for runs with the same data, model and settings", path)
    return model.eval(), trained, info


def reference_losses(stage, indices: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """learnability, for the pretraining stage ``stage`` (its ``LearnerAccess.reference_losses``): the reference
    model (trained to a plateau on the holdout carved from the training split, or reused from the cache), then its
    per-task losses (N x T) on the training samples ``indices`` through the run's scoring view, each the mean over
    ``teaching.reference_draws`` draws; and what the reference model is (its steps, why it stopped, its final loss,
    its holdout) for the selection's record."""
    draws = stage.cfg.teaching.reference_draws
    with stage.timer.phase("scoring", sync=True):
        reference, _, info = load_or_train_reference_model(
            stage.cfg, lambda: build_pretrain_model(stage.cfg), stage.loss_fn, stage.views["reference"],
            stage.device, stage.precision, stage.dist, show_bar=stage.show_bars)
        # Its whole training cost, reused from the cache or not: the method's compute does not depend on
        # whether another run of the sweep trained it first.
        stage.progress.reference_trained_samples += info["trained_samples"]
        total = None
        for draw in range(draws):
            idx, values = run_scoring_pass(
                stage._score_batches(indices, 0, draw, by=f" (reference model, draw {draw + 1}/{draws})"),
                lambda batch: stage._per_task_losses(batch, reference), indices, stage._gather, stage.device)
            out = torch.empty(indices.numel(), values.shape[1], device=values.device)
            out[idx] = values
            total = out if total is None else total + out  # -inf (failed to load) stays -inf
    return total / draws, {**info, "holdout_samples": len(stage.views["reference"]), "draws": draws}


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


def holdout_stream(size: int, seed: int):
    """(view index, pass) of the holdout samples, pass after pass, each pass a seeded permutation."""
    for p in itertools.count():
        for i in torch.randperm(size, generator=generator(seed, STREAM_REFERENCE, p)).tolist():
            yield i, p


def train_to_plateau(cfg, model: torch.nn.Module, loss_fn, view, device: torch.device, precision: str,
                     dist: DistEnv, show_bar: bool = False) -> tuple[int, dict]:
    """Train ``model`` on ``view`` as the module docstring says; returns (samples trained, info)."""
    t, seed = cfg.teaching, cfg.trainer.seed
    # The run's global batch, in micro-batches of the run's size: the same model whatever the number of ranks.
    batch = max(1, min(cfg.trainer.batch_size, len(view)))
    # Per-rank micro-batches like training's (every rank trains the whole reference: no more memory than training).
    micro = max(1, min(cfg.trainer.micro_batch_size or math.ceil(batch / dist.world_size), batch))
    optimizer = build_optimizer(model, cfg.optim, batch, device)
    warmup = min(t.reference_check_every, t.reference_max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    model.train()
    samples, rule, bad = holdout_stream(len(view), seed), PlateauRule(t.reference_patience), BadSampleLog()
    window_total, window_count, trained = 0.0, 0, 0
    stopped, final_loss, step = "max_steps", math.nan, 0
    bar = progress_bar(total=t.reference_max_steps, desc="reference model", show=show_bar)
    for step in range(1, t.reference_max_steps + 1):
        keys = list(itertools.islice(samples, batch))
        optimizer.zero_grad(set_to_none=True)
        step_total, step_count = 0.0, 0
        for chunk in range(0, len(keys), micro):
            items = collate_skipping_bad([view[(i, p, 1.0)] for i, p in keys[chunk:chunk + micro]])
            bad.update(items)
            if "index" not in items:
                continue
            inputs = to_device(items, device, MODALITIES)
            with autocast(precision, device):
                preds, masks = model(inputs, task_masks=items["masks"])
            per_sample = loss_fn.objective(loss_fn(preds, inputs, masks))
            (per_sample.sum() / len(keys)).backward()  # the mean over the whole step's batch
            step_total += float(per_sample.detach().float().sum())
            step_count += per_sample.numel()
        if not math.isfinite(step_total):
            raise DataError(f"teaching.score=learnability: the reference model's training loss is not finite at step "
                            f"{step} (it diverged); lower optim.blr (or optim.lr), or use teaching.score=loss")
        if cfg.optim.clip_grad:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.clip_grad)
        optimizer.step()
        scheduler.step()
        bar.update(1)
        trained, window_total, window_count = trained + step_count, window_total + step_total, window_count + step_count
        window_end = step % t.reference_check_every == 0
        if window_end or step == t.reference_max_steps:
            final_loss = rank0_value(window_total / window_count if window_count else math.nan, device, dist)
            window_total, window_count = 0.0, 0
            log.debug("reference model, step %d: window loss %.4f (best so far %.4f)", step, final_loss, rule.best)
            if window_end and rule.plateaued(final_loss):
                stopped = "plateau"
                break
    bar.close()
    bad.report("the reference model's holdout")
    if not trained:
        raise nothing_loaded("holdout sample of the reference model (teaching.reference_holdout)", bad.count,
                             bad.examples)
    why = (f"its loss plateaued: {t.reference_patience} window(s) of {t.reference_check_every} steps in a row without "
           f"a {IMPROVEMENT:.0%} improvement" if stopped == "plateau"
           else f"it reached teaching.reference_max_steps={t.reference_max_steps}")
    log.info("reference model: %d steps on %d holdout samples, stopped because %s; final window loss %.4f", step,
             len(view), why, final_loss)
    return trained, {"steps": step, "stopped": stopped, "final_loss": final_loss, "trained_samples": trained}


def rank0_value(value: float, device: torch.device, dist: DistEnv) -> float:
    """Rank 0's ``value`` on every rank: the stopping decisions must agree even where float sums differ by rank."""
    if not dist.distributed:
        return value
    holder = torch.tensor([value], dtype=torch.float64, device=device)
    torch_dist.broadcast(holder, src=0)
    return float(holder)
