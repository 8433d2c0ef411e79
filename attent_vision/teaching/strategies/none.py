"""No selection: every epoch trains on the full data (the baseline every subset method is measured against)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import STRATEGIES, SelectionStrategy

if TYPE_CHECKING:
    import torch


@STRATEGIES.register()
class NoSelection(SelectionStrategy):
    name = "none"
    description = "full data every epoch (the baseline)"
    needs_scores = False
    trains_on_subsets = False  # the plan has full epochs only, so the teacher never asks this strategy to select

    def select(self, scores: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        import torch

        return torch.arange(k)
