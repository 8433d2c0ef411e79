"""The interface every score function implements, what it is given, and the registry: a score function is one
module of this package (or of the user's ``extensions``) whose class carries ``@SCORES.register()``."""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...registry import Registry

if TYPE_CHECKING:  # torch only where tensors are made: config checks read score traits without importing it
    import torch


@dataclass
class ScoreInputs:
    """Per-sample, per-task losses the teacher holds (N x T, T = the loss module's tasks in order; NaN = none yet,
    -inf = the sample failed to load).

    current: each sample's newest per-task losses; previous: the ones before them (progress); reference: the
    per-task losses of a reference model trained on holdout data (learnability), None until it exists.
    """

    current: torch.Tensor
    previous: torch.Tensor
    reference: torch.Tensor | None = None


class ScoreFunction(ABC):
    """Per-task scores (N x T, higher = more worth training on) from the losses the teacher holds.

    The teacher combines the T columns into one score per sample (modality weights, modalities.py). NaN marks a
    sample with no score (never scored, or no history yet): the selection presumes it informative and ranks it
    first. ``needs_history`` / ``needs_reference`` declare what the function reads, so the teacher can check the
    run can provide it before training starts (and the stage holds out the reference model's data);
    ``description`` is the plan printout's line; ``relative_to_loss_level``: a ratio of the score to the training
    loss level ranks samples by how hard they are (a loss does; a difference of losses need not),
    so ``teaching.normalize_free_scores`` may apply to it.
    """

    name: str = ""
    description: str = ""
    needs_history: bool = False
    needs_reference: bool = False
    relative_to_loss_level: bool = False

    def per_task(self, inputs: ScoreInputs) -> torch.Tensor:
        raise NotImplementedError


SCORES: Registry[type[ScoreFunction]] = Registry("score function", "teaching.score", __package__)
