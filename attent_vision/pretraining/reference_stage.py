"""learnability's reference model as a run of the shared loop core (engine/loop.py), inside the pretraining run.

The reference is a fresh pretraining model trained on the holdout (``views["reference"]``, builders.py) in a run
folder of its own, ``<run>/reference/`` (lock, checkpoints, config.yaml, results.json with ``stage: reference``, no
tracker): the core's non-finite guard, precision, sampler, checkpoints and exact resume apply to it as to any run.
What makes it a reference run:

- Its "epochs" are check windows of ``teaching.reference_check_every`` optimizer steps (the last one shorter when
  ``teaching.reference_max_steps`` is not a multiple), at most ``reference_max_steps`` steps in all.
- The holdout streams through pass after pass, each pass a seeded permutation of it; each window trains on the
  next slice of that stream (``epoch_pool``), so every sample is seen once per pass, and each pass draws fresh
  crops, flips and masks (the item of pass p is the view's key ``(i, p)``: :class:`HoldoutPasses`).
- The learning rate warms up linearly over the first window, then stays constant: the run's length is not known in
  advance, so there is no end to anneal to.
- After each full window the core asks ``training_done``: the :class:`PlateauRule` on the window's mean training
  loss (summed over ranks by the core, then rank 0's value, so every rank decides alike) ends the run early.
- The global batch is the run's, capped at the holdout's size (and rounded down to a multiple of the ranks); its
  initial weights come from the seed's reference stream, not the learner's.
- It installs no signal handlers: the pretraining run's stop requests are its own (:class:`OuterStop`), so a
  signal or ``trainer.stop_after_steps`` (counting its steps while it trains) saves its checkpoint and ends it as
  interrupted, and the pretraining run then ends too (reference.py raises ``StoppedInHook``). The rerun resumes it.
"""

import copy
import math
from dataclasses import dataclass

import torch
from omegaconf import OmegaConf
from torch.utils.data import Dataset

from ..engine.distributed import DistEnv, broadcast_object
from ..engine.loaders import to_device
from ..engine.loop import Trainer
from ..engine.optim import absolute_lr, build_optimizer
from ..engine.runtime import autocast
from ..engine.sampler import StepShape
from ..errors import ConfigError
from ..seeds import STREAM_REFERENCE, derive_seed, generator
from .builders import MODALITIES, build_loss, build_pretrain_model

IMPROVEMENT = 0.01  # a window must beat the best window so far by more than this share to count as progress
SUBFOLDER = "reference"  # <pretraining run>/reference/: the reference model's run folder


@dataclass
class PlateauRule:
    """Stop after ``patience`` check windows in a row whose mean loss did not beat the best window by more than
    :data:`IMPROVEMENT` (relative). A window without a finite loss is no improvement."""

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


class HoldoutPasses(Dataset):
    """The holdout view ``passes`` times over: item ``p * H + i`` is holdout sample i as drawn in pass p (the view's
    key ``(i, p, weight)``: crops, flips and masks of that pass). The sampler's epoch (a window) is not used."""

    def __init__(self, view, passes: int):
        self.view, self.passes = view, passes

    def __len__(self) -> int:
        return self.passes * len(self.view)

    def __getitem__(self, key) -> dict:
        item, _, weight = key[:3]
        pass_, index = divmod(int(item), len(self.view))
        return self.view[(index, pass_, weight)]


class WarmupThenConstant:
    """Linear warm-up over ``warmup`` steps (the step after ``s`` updates trains at (s+1)/warmup of the rate), then
    the rate itself; ``step_update`` as timm's schedulers, which the core calls."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup: int):
        self.optimizer, self.warmup = optimizer, max(warmup, 1)
        self.base = [group["lr"] for group in optimizer.param_groups]

    def step_update(self, step: int) -> None:
        factor = min(1.0, (step + 1) / self.warmup)
        for group, lr in zip(self.optimizer.param_groups, self.base):
            group["lr"] = lr * factor


class OuterStop:
    """The pretraining run's stop requests (engine/preemption.py) as the reference run's own: it acts on them
    (checkpoint, then stop) but neither installs nor restores signal handlers, which stay the outer run's."""

    def __init__(self, outer):
        self.outer = outer

    @property
    def pending(self):
        return self.outer.pending

    @pending.setter
    def pending(self, value) -> None:
        self.outer.pending = value

    def install(self) -> None:
        pass

    def restore_and_resend_late(self) -> None:
        pass  # a request that arrived while the reference finished stays pending for the outer run

    def act(self) -> bool:
        return self.outer.act()

    @property
    def exit_code(self) -> int:
        return self.outer.exit_code


def reference_batch(cfg, holdout_size: int, world_size: int) -> int:
    """The reference's global batch: the run's, at most the holdout, a multiple of the ranks."""
    batch = min(cfg.trainer.batch_size, holdout_size)
    batch -= batch % world_size
    if batch < 1:
        raise ConfigError(f"teaching.reference_holdout={cfg.teaching.reference_holdout} leaves {holdout_size} samples "
                          f"for the reference model, fewer than the {world_size} ranks; raise the fraction")
    return batch


def reference_config(cfg, holdout_size: int, world_size: int):
    """The reference run's config: the pretraining run's, with its global batch (:func:`reference_batch`),
    checkpoints at the end and every ``checkpoint.every_steps`` (a window is too short to checkpoint each), resumed
    whenever its folder has a checkpoint (the pretraining run decided whether to resume), and no tracker."""
    sub = copy.deepcopy(cfg)
    OmegaConf.set_readonly(sub, False)
    sub.trainer.batch_size = reference_batch(cfg, holdout_size, world_size)
    sub.checkpoint.every_epochs = 0
    sub.checkpoint.keep_last = 1  # its weights live on in the cache and its losses in the teacher: keep one only
    sub.checkpoint.resume = "auto"
    sub.logger.mode = "disabled"
    return sub


class ReferenceTrainer(Trainer):
    """Train the reference model on ``view`` (the holdout) in ``run_dir`` (resumed when it has checkpoints).
    ``outer``: the pretraining stage it runs in (its stop requests and the config keys its resume may change)."""

    stage = "reference"

    def __init__(self, cfg, view, run_dir, dist: DistEnv, outer=None):
        self.view = view
        self.rule = PlateauRule(cfg.teaching.reference_patience)
        self.plateaued, self.final_loss = False, math.nan
        if outer is not None:
            self.resume_may_differ = outer.resume_may_differ
        super().__init__(reference_config(cfg, len(view), dist.world_size), run_dir, dist)
        if outer is not None:
            self.stop = OuterStop(outer.stop)

    def setup(self) -> None:
        cfg, t = self.cfg, self.cfg.teaching
        torch.manual_seed(derive_seed(cfg.trainer.seed, STREAM_REFERENCE))  # its own initial weights
        self.model = build_pretrain_model(cfg).to(self.device)
        self.loss_fn = build_loss(cfg, self.model)
        self.window, self.max_steps = t.reference_check_every, t.reference_max_steps
        self.num_epochs = math.ceil(self.max_steps / self.window)
        self.train_dataset = HoldoutPasses(self.view, math.ceil(self.max_steps * cfg.trainer.batch_size
                                                                / len(self.view)))

    def window_steps(self, epoch: int) -> int:
        return min(self.window, self.max_steps - epoch * self.window)

    def epoch_size(self, epoch: int) -> int:
        return self.window_steps(epoch) * self.cfg.trainer.batch_size

    def epoch_pool(self, epoch: int, resuming: bool) -> torch.Tensor:
        """Window ``epoch``'s slice of the stream of passes (as :class:`HoldoutPasses` items), a pure function of
        the window, so a resumed window trains on the same samples."""
        size, batch = len(self.view), self.cfg.trainer.batch_size
        positions = torch.arange(epoch * self.window * batch, epoch * self.window * batch + self.epoch_size(epoch))
        passes = positions // size
        first = int(passes[0])
        orders = torch.stack([torch.randperm(size, generator=generator(self.cfg.trainer.seed, STREAM_REFERENCE, p))
                              for p in range(first, int(passes[-1]) + 1)])
        return passes * size + orders[passes - first, positions % size]

    def build_optimization(self):
        optimizer = build_optimizer(self.model, self.cfg.optim, self.global_batch, self.device)
        return optimizer, WarmupThenConstant(optimizer, min(self.window, self.max_steps))

    def step_loss(self, batch: dict, shape: StepShape) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = to_device(batch, self.device, MODALITIES)
        with autocast(self.precision, self.device):
            preds, masks = self.train_model(inputs, task_masks=batch["masks"])
        per_sample = self.loss_fn.objective(self.loss_fn(preds, inputs, masks))
        weights = batch["weight"].to(self.device, torch.float32)
        # The global batch mean, whatever the number of ranks and micro-batches (as in pretraining)
        loss = (per_sample * weights).sum() * (self.dist.world_size / shape.global_count)
        with torch.no_grad():
            row = torch.stack([weights.sum(), (per_sample * weights).sum()])
        return loss, row

    def training_done(self, epoch: int, metrics: dict) -> bool:
        """The plateau rule, after each full window, on rank 0's window mean (the same on every rank)."""
        self.final_loss = float(broadcast_object(metrics.get("train_loss", math.nan), self.dist))
        if self.window_steps(epoch) == self.window:
            self.plateaued = self.rule.plateaued(self.final_loss)
        return self.plateaued

    def epoch_label(self, epoch: int) -> str:
        return "reference model"

    def epoch_record(self, epoch: int) -> dict:
        return {"steps": self.window_steps(epoch)}

    def extra_state(self) -> dict:
        return {"reference": {"best": self.rule.best, "stale": self.rule.stale, "plateaued": self.plateaued,
                              "final_loss": self.final_loss}}

    def load_extra_state(self, state: dict) -> None:
        saved = state["reference"]
        self.rule.best, self.rule.stale = saved["best"], saved["stale"]
        self.plateaued, self.final_loss = saved["plateaued"], saved["final_loss"]

    def info(self) -> dict:
        """What the training did (reference_cache.INFO_KEYS): optimizer steps, why it stopped, the last window's
        mean loss, and the samples of its steps (all invocations of this run)."""
        p = self.progress
        return {"steps": p.global_step, "stopped": "plateau" if self.plateaued else "max_steps",
                "final_loss": self.final_loss, "trained_samples": p.samples_seen}

    def setting(self) -> dict:
        t = self.cfg.teaching
        return {"model": self.cfg.model.name, "data": self.cfg.data.name, "holdout_samples": len(self.view),
                "check_every": t.reference_check_every, "patience": t.reference_patience, "max_steps": self.max_steps}

    def result_details(self) -> dict:
        return {"reference_model": self.info()}

    def describe(self) -> list[str]:
        lr = absolute_lr(self.cfg.optim.blr, self.cfg.optim.lr, self.global_batch)
        return [f"learnability's reference model: a fresh {self.cfg.model.name} on the {len(self.view)}-sample "
                f"holdout, global batch {self.global_batch}, lr {lr:.2e}; its epochs are check windows of "
                f"{self.window} steps, until its loss plateaus ({self.rule.patience} windows without a "
                f"{IMPROVEMENT:.0%} gain) or {self.max_steps} steps"]
