"""What the teacher may ask of the learner: the one interface between teaching/ and the training stage.

The stage hands the teacher one :class:`Learner` (pretraining/learner.py adapts the MultiMAE stage's model, loaders
and ranks to it); the teacher runs every scoring pass itself through it and imports nothing of the engine.
:class:`LearnerAccess` builds a learner from plain functions (tests, notebooks, other stages).
"""

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterable

import torch


class Learner:
    """The learner as the teacher sees it. Only ``score_batches`` and ``per_task_losses`` are required; the others
    default to one process, no timing and no reference model."""

    def score_batches(self, indices: torch.Tensor, epoch: int, draw: int) -> Iterable[dict]:
        """This rank's batches of the samples ``indices`` for a scoring pass; ``draw`` numbers independent
        mask/crop draws (0, 1, ...) of a K-draw pass. Each batch holds 'index' (B) and may hold 'bad_index'."""
        raise NotImplementedError

    def per_task_losses(self, batch: dict, model: Any = None) -> torch.Tensor:
        """B x T per-sample per-task losses of ``batch`` (under no_grad) by the learner, or by ``model``: a reference
        model handed out by ``reference_model`` (the teacher passes it back untouched)."""
        raise NotImplementedError

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate a 1-D tensor across ranks, in rank order (the identity in one process)."""
        return x

    def inference(self) -> ContextManager:
        """Around each scoring pass: evaluation mode, its time charged to scoring."""
        return nullcontext()

    def measurement(self) -> ContextManager:
        """Around the repeatability check's second scoring: evaluation mode, its time kept apart from scoring (it
        measures the scores; it is not part of the method)."""
        return nullcontext()

    def synchronize(self) -> None:
        """Wait for the device (honest timing)."""

    def work_so_far(self) -> tuple[float, int]:
        """(seconds spent training, waiting for data and scoring so far, samples trained so far): what the cost cap
        on scoring compares against."""
        return 0.0, 0

    def reference_model(self) -> tuple[Any, dict] | None:
        """A score function that ``needs_reference``: (a reference model trained on holdout data, identical on every
        rank; a dict describing it for the selection's record). Called once, inside ``inference``; None when the
        stage cannot train one."""
        return None


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@dataclass
class LearnerAccess(Learner):
    """A :class:`Learner` from functions: each field is the method of the same name."""

    score_batches: Callable[[torch.Tensor, int, int], Iterable[dict]]
    per_task_losses: Callable[..., torch.Tensor]  # (batch) or (batch, model) -> B x T
    gather: Callable[[torch.Tensor], torch.Tensor] = _identity
    inference: Callable[[], ContextManager] = nullcontext
    measurement: Callable[[], ContextManager] = nullcontext
    synchronize: Callable[[], None] = lambda: None
    work_so_far: Callable[[], tuple[float, int]] = lambda: (0.0, 0)
    reference_model: Callable[[], tuple[Any, dict]] | None = None
