"""Top-k by score: the k samples the learner is most wrong on. Deterministic, so it has no unbiased weights: a
sample outside the top k is never seen, and no weighting of the others can stand in for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import STRATEGIES, SelectionStrategy

if TYPE_CHECKING:
    import torch


@STRATEGIES.register()
class HardSelection(SelectionStrategy):
    name = "hard"
    description = "the k samples with the highest scores"
    has_unbiased_weights = False

    def select(self, scores: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        import torch

        # A stable sort makes ties resolve by index, so equal scores give the same subset on every rank and run.
        return torch.argsort(scores, descending=True, stable=True)[:k]
