"""The interface every selection strategy implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch only where tensors are made: config checks read strategy traits without importing it
    import torch


class SelectionStrategy(ABC):
    """Choose k of N samples, given one score per sample (higher = the learner is more wrong on it).

    ``needs_scores`` tells the teacher whether a scoring pass is worth running: strategies that ignore scores
    (random) skip it entirely. ``trains_on_subsets`` is False only for ``none`` (full data), whose plan has no
    subset epochs. ``cyclic`` strategies follow the paper's select-then-train cycles (ratio/ and interval/);
    ``prune`` plans every epoch itself.

    ``select_weighted`` adds the weights that make the subset's weighted mean an unbiased estimate of the full-data
    mean (``selection.reweight=unbiased``): k / (N pi_i), pi_i the sample's probability of being chosen, so their
    expected mean over the subset is 1. A strategy with no such weights (hard top-k: pi_i is 0 or 1, nothing can
    correct for the samples it never picks) keeps the default, which refuses.
    """

    name: str = ""
    needs_scores: bool = True
    trains_on_subsets: bool = True
    cyclic: bool = True
    free_scores_only: bool = False  # scores come from training steps whatever teaching.score_source says
    has_unbiased_weights: bool = True  # select_weighted is implemented (hard: False)

    @abstractmethod
    def select(self, scores: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        """scores: N float (CPU) -> k distinct indices (long), in selection order."""

    def select_weighted(self, scores: torch.Tensor, k: int, generator: torch.Generator
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """scores: N -> (k distinct indices, k float64 weights k / (N pi_i))."""
        raise ValueError(f"selection.strategy={self.name} has no unbiased weights; use selection.reweight=none")
