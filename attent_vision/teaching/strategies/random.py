"""Uniform subset: the matched baseline for scored selection. Ignores scores, so no scoring pass runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import STRATEGIES, SelectionStrategy

if TYPE_CHECKING:
    import torch


@STRATEGIES.register()
class RandomSelection(SelectionStrategy):
    name = "random"
    description = "a uniform random subset, drawn anew at each selection"
    needs_scores = False

    def select(self, scores: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        import torch

        return torch.randperm(scores.numel(), generator=generator)[:k]

    def select_weighted(self, scores: torch.Tensor, k: int, generator: torch.Generator
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        # Every sample is chosen with probability k / N, so every weight is k / (N * k / N) = 1.
        return self.select(scores, k, generator), torch.ones(k, dtype=torch.float64)
