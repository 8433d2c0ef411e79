"""Uniform subset: the matched baseline for scored selection. Ignores scores, so no scoring pass runs."""

import torch

from .base import SelectionStrategy


class RandomSelection(SelectionStrategy):
    name = "random"
    needs_scores = False

    def select(self, scores: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randperm(scores.numel(), generator=generator)[:k]
