"""The interface every selection strategy implements, and their registry: a strategy is one module of this package
(or of the user's ``extensions``) whose class carries ``@STRATEGIES.register()``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...registry import Registry

if TYPE_CHECKING:  # torch only where tensors are made: config checks read strategy traits without importing it
    import torch

    from ..epoch_plan import EpochPlan


@dataclass(frozen=True)
class SelectionRound:
    """Where a selection stands in its run: what a strategy that depends on earlier selections needs to compute its
    draw from numbers alone (no state to checkpoint, so a resumed run draws what an uninterrupted one would).

    ``drawn_before`` counts the samples chosen by every earlier selection of the run; ``earlier_sizes`` lists those
    selections' sizes in order (their sum is ``drawn_before``), so that a strategy can tell where each of them began
    and ended (rs2 needs that to know which samples ended the previous pass).
    """

    seed: int
    epoch: int
    drawn_before: int
    earlier_sizes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.drawn_before < 0:
            raise ValueError(f"drawn_before must be >= 0, got {self.drawn_before}")
        if self.earlier_sizes and sum(self.earlier_sizes) != self.drawn_before:
            raise ValueError(f"earlier_sizes sum to {sum(self.earlier_sizes)}, not drawn_before={self.drawn_before}")


class SelectionStrategy(ABC):
    """Choose k of N samples, given one score per sample (higher = the learner is more wrong on it).

    ``needs_scores`` tells the teacher whether a scoring pass is worth running: strategies that ignore scores
    (random, rs2) skip it entirely. ``trains_on_subsets`` is False only for ``none`` (full data), whose plan has no
    subset epochs. ``cyclic`` strategies follow the paper's select-then-train cycles (ratio/ and interval/);
    ``prune`` plans every epoch itself. ``reselects_every_subset_epoch`` strategies get a selection before every
    subset epoch whatever ``selection.reselect_every_subset_epoch`` says (rs2: a fresh subset each epoch is what it is).

    ``select_weighted`` adds the weights that make the subset's weighted mean an unbiased estimate of the full-data
    mean (``selection.reweight=unbiased``): k / (N pi_i), pi_i the sample's probability of being chosen, so their
    expected mean over the subset is 1. A strategy with no such weights (hard top-k: pi_i is 0 or 1, nothing can
    correct for the samples it never picks) keeps the default, which refuses.

    The teacher calls ``select_round`` / ``select_weighted_round``, which also receive the ``SelectionRound``; they
    default to ``select`` / ``select_weighted``, so only a strategy whose draw depends on earlier selections (rs2)
    overrides them.
    """

    name: str = ""
    description: str = ""  # one line for the plan printout (what the subset is)
    needs_scores: bool = True
    trains_on_subsets: bool = True
    cyclic: bool = True  # False: the strategy plans every epoch itself (``plan_epochs``)
    reselects_every_subset_epoch: bool = False  # True: the plan selects before every subset epoch (rs2)
    free_scores_only: bool = False  # scores come from training steps whatever teaching.score_source says
    has_unbiased_weights: bool = True  # select_weighted is implemented (hard: False)

    @classmethod
    def from_config(cls, selection) -> "SelectionStrategy":
        """The strategy for the ``selection`` config group (a SelectionConfig or any object with its attributes);
        a strategy with options of its own (soft: temperature, normalization) reads them here."""
        return cls()

    def plan_epochs(self, num_samples: int, epochs: int) -> "EpochPlan":
        """Every epoch of a non-``cyclic`` strategy's run (cyclic strategies follow the ratio/interval cycles that
        plan.py builds and never get this call)."""
        raise NotImplementedError(f"selection strategy '{self.name}' is not cyclic, so it must plan its own epochs "
                                  "(plan_epochs)")

    @abstractmethod
    def select(self, scores: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        """scores: N float (CPU) -> k distinct indices (long), in selection order."""

    def select_weighted(self, scores: torch.Tensor, k: int, generator: torch.Generator
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """scores: N -> (k distinct indices, k float64 weights k / (N pi_i))."""
        raise ValueError(f"selection.strategy={self.name} has no unbiased weights; use selection.reweight=none")

    def select_round(self, scores: torch.Tensor, k: int, generator: torch.Generator,
                     round: SelectionRound) -> torch.Tensor:
        """``select`` for the selection ``round`` of a run. scores: N -> k distinct indices (long)."""
        return self.select(scores, k, generator)

    def select_weighted_round(self, scores: torch.Tensor, k: int, generator: torch.Generator,
                              round: SelectionRound) -> tuple[torch.Tensor, torch.Tensor]:
        """``select_weighted`` for the selection ``round`` of a run. scores: N -> (k indices, k float64 weights)."""
        return self.select_weighted(scores, k, generator)


STRATEGIES: Registry[type[SelectionStrategy]] = Registry("selection strategy", "selection.strategy", __package__)
