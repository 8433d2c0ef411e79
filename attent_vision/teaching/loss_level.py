"""The training loss level that normalised free scores are divided by (``teaching.normalize_free_scores``).

Free scores are taken at different steps: a score from early in a cycle is higher because the model was worse then,
not because the sample is harder, so ranking raw scores favours the samples trained longest ago. Dividing each
score by the loss level at the step it was taken removes that drift. The level is an exponential moving average
over optimizer steps (momentum 0.9 per step) of the global batch's mean per-task loss, fed only by full-data
epochs, whose batches are typical samples (a subset's batches are the selected ones, whose mean is not the level:
the level holds through subset epochs; with ``selection=prune``, whose pruned epochs are subsets, it stays that of
its first epoch, so normalising changes nothing there).

A step's batch is spread over ranks and micro-batches: each rank sums what it observed, and the step is folded into
the level when the next step begins (or before a selection or a checkpoint), from the sums of all ranks, so every
rank holds the same levels. ``levels`` row s is the level at score stamp s (after folding steps 0..s-1): a training
step's score (stamped step + 1) is divided by the level that includes its own batch, a refresh at a selection after
``step`` updates (stamped ``step``) by the level of every step before it.
"""

from typing import Callable

import torch

MOMENTUM = 0.9  # per optimizer step: about ten steps of memory


class LossLevel:
    """levels: S x T (CPU), row s = the level at stamp s (NaN before any full-data batch was folded)."""

    def __init__(self, num_tasks: int, gather: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.levels = torch.full((1, num_tasks), float("nan"))
        self.gather = gather  # concatenates a 1-D tensor across ranks; None: one process
        self._sums: torch.Tensor | None = None  # T + 1 (sums of values, count) of the pending step, on its device
        self._step: int | None = None
        self._full = False

    def observe(self, values: torch.Tensor, weights: torch.Tensor, step: int, full_epoch: bool) -> None:
        """Add a micro-batch of step ``step`` (B x T values, B weights; weight 0 = padding) to its step's sums."""
        if self._step is not None and step != self._step:
            self.fold()
        kept = (weights > 0).to(values)
        sums = torch.cat([(values * kept[:, None]).sum(0), kept.sum()[None]])
        self._sums = sums if self._sums is None else self._sums + sums
        self._step, self._full = step, full_epoch

    def fold(self) -> None:
        """Fold the pending step into the levels (a collective under DDP: every rank calls it at the same point)."""
        if self._step is None:
            return
        sums = self._sums.double()
        if self.gather is not None:
            sums = self.gather(sums).view(-1, sums.numel()).sum(0)
        sums = sums.cpu()
        previous = self.levels[-1]
        level = previous
        if self._full and sums[-1] > 0:
            mean = (sums[:-1] / sums[-1]).float()
            level = torch.where(torch.isnan(previous), mean, MOMENTUM * previous + (1 - MOMENTUM) * mean)
        while self.levels.shape[0] <= self._step:  # steps that observed nothing keep the level
            self.levels = torch.cat([self.levels, previous[None]])
        self.levels = torch.cat([self.levels[: self._step + 1], level[None]])
        self._sums, self._step = None, None

    def at(self, stamps: torch.Tensor) -> torch.Tensor:
        """N x T levels at score stamps ``stamps`` (N long; -1 = never scored, NaN); stamps past the last folded
        step take the newest level."""
        stamps = stamps.detach().cpu()
        out = self.levels[stamps.clamp(0, self.levels.shape[0] - 1)]
        out[stamps < 0] = float("nan")
        return out

    def state_dict(self) -> dict:
        self.fold()
        return {"levels": self.levels.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.levels = state["levels"].clone()
        self._sums, self._step = None, None
