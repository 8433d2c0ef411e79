"""No selection: every epoch trains on the full data (the baseline every subset method is measured against)."""

import torch

from .base import SelectionStrategy


class NoSelection(SelectionStrategy):
    name = "none"
    needs_scores = False
    trains_on_subsets = False  # the plan has full epochs only, so the teacher never asks this strategy to select

    def select(self, scores: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        return torch.arange(k)
