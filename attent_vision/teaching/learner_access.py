"""What the teacher may ask of the learner: the one interface between teaching/ and the training stage, which
adapts its model, loaders and ranks to it (the teacher imports nothing of the engine)."""

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterable

import torch


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@dataclass
class LearnerAccess:
    """What the teacher may ask of the learner; supplied by the training stage."""

    # (indices, epoch, draw) -> this rank's batches of them; draw numbers independent mask/crop draws (0, 1, ...)
    score_batches: Callable[[torch.Tensor, int, int], Iterable[dict]]
    per_task_losses: Callable[[dict], torch.Tensor]  # batch -> B x T per-sample per-task losses (under no_grad)
    gather: Callable[[torch.Tensor], torch.Tensor] = _identity  # concatenate a 1-D tensor across ranks, rank order
    inference: Callable[[], ContextManager] = nullcontext  # around each pass: evaluation mode (and the stage's timer)
    # around the repeatability check's second scoring: evaluation mode, its time kept apart from scoring (it
    # measures the scores, it is not part of the method)
    measurement: Callable[[], ContextManager] = nullcontext
    synchronize: Callable[[], None] = lambda: None  # wait for the device (honest timing)
    # (seconds spent training, waiting for data and scoring so far, samples trained so far), for the scoring cap
    work_so_far: Callable[[], tuple[float, int]] = lambda: (0.0, 0)
    # learnability: train a reference model on holdout data, return its per-task losses (N x T) on the given
    # training samples (identical on every rank) and a dict describing it (for the selection's record); None when
    # the stage cannot train one
    reference_losses: Callable[[torch.Tensor], tuple[torch.Tensor, dict]] | None = None
