"""The interface every selection strategy implements."""

from abc import ABC, abstractmethod

import torch


class SelectionStrategy(ABC):
    """Choose k of N samples, given one score per sample (higher = the learner is more wrong on it).

    ``needs_scores`` tells the teacher whether a scoring pass is worth running: strategies that ignore scores
    (random) skip it entirely. ``trains_on_subsets`` is False only for ``none`` (full data), whose plan has no
    subset epochs.
    """

    name: str = ""
    needs_scores: bool = True
    trains_on_subsets: bool = True

    @abstractmethod
    def select(self, scores: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        """scores: N float (CPU) -> k distinct indices (long), in selection order."""
