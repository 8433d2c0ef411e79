"""InfoBatch-style pruning (Qin et al., ICLR 2024), our implementation from the paper's description.

Each pruned epoch drops, at random, samples whose score is below the mean (they are already well learnt), and the
kept below-mean samples' losses are scaled up by the inverse of their keep probability so that the epoch's expected
gradient is the full-data one; the last (1 - delta) of the epochs train on full data (plan.py). Scores are free:
the losses of the training steps, so the strategy always uses ``score_source=training``.

One departure, because our plan fixes every epoch's size before training (the learning-rate schedule spans exactly
the steps that run): each pruned epoch drops d = round(prune_ratio x N / 2) samples, drawn uniformly from the
below-mean set B. When |B| > N / 2, as with the right-skewed losses of reconstruction, each member of B is dropped
with probability d / |B| < prune_ratio; should fewer than half the samples lie below the mean, B is the lowest-scored
ceil(N / 2) instead, so d always fits. The rescaling uses the real keep probability 1 - d / |B|.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..epoch_plan import FULL, SUBSET, EpochPlan, EpochSpec
from .base import STRATEGIES, SelectionStrategy

if TYPE_CHECKING:
    import torch


def prune_candidates(scores: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """scores: N -> indices of the below-mean samples, or the lowest ceil(N / 2) when fewer lie below the mean
    (ties in random order from ``generator``: equal scores, e.g. none known yet, must not prune by index)."""
    import torch

    below = (scores < scores.mean()).nonzero().squeeze(1)
    half = math.ceil(scores.numel() / 2)
    if below.numel() >= half:
        return below
    order = torch.randperm(scores.numel(), generator=generator)
    return order[torch.argsort(scores[order], stable=True)][:half]


@STRATEGIES.register()
class PruneSelection(SelectionStrategy):
    name = "prune"
    description = "InfoBatch-style: below-mean-score samples dropped at random, the kept ones' losses rescaled"
    cyclic = False
    free_scores_only = True

    def __init__(self, prune_ratio: float = 0.5, prune_delta: float = 0.875):
        self.prune_ratio, self.prune_delta = prune_ratio, prune_delta

    @classmethod
    def from_config(cls, selection) -> "PruneSelection":
        return cls(prune_ratio=selection.prune_ratio, prune_delta=selection.prune_delta)

    def plan_epochs(self, num_samples: int, epochs: int) -> EpochPlan:
        return prune_plan(num_samples, epochs, self.prune_ratio, self.prune_delta)

    def select(self, scores: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        return self.select_weighted(scores, k, generator)[0]

    def select_weighted(self, scores: torch.Tensor, k: int, generator: torch.Generator
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        n = scores.numel()
        candidates = prune_candidates(scores.double(), generator)
        drop = n - k
        if drop > candidates.numel():
            raise ValueError(f"prune: cannot drop {drop} of {n} samples, only {candidates.numel()} are prunable")
        keep = torch.ones(n, dtype=torch.bool)
        keep[candidates[torch.randperm(candidates.numel(), generator=generator)[:drop]]] = False
        inclusion = torch.ones(n, dtype=torch.float64)
        if drop:
            inclusion[candidates] = 1 - drop / candidates.numel()
        chosen = keep.nonzero().squeeze(1)
        return chosen, k / (n * inclusion[chosen])


def prune_plan(num_samples: int, epochs: int, prune_ratio: float, prune_delta: float) -> EpochPlan:
    """Epoch 0 on full data (it gives every sample its first training-step score); epochs 1 .. ceil(delta E) - 1
    pruned by round(prune_ratio x N / 2) samples each (strategies/prune.py), a selection before each; the rest,
    the tail, on full data."""
    if not 0 <= prune_ratio < 1:
        raise ValueError(f"prune_ratio must be in [0, 1), got {prune_ratio}")
    if not 0 < prune_delta <= 1:
        raise ValueError(f"prune_delta must be in (0, 1], got {prune_delta}")
    size = num_samples - round(prune_ratio * num_samples / 2)
    pruned = range(1, max(1, math.ceil(prune_delta * epochs - 1e-9)))
    specs = [EpochSpec(e, SUBSET, 0, size / num_samples, size, True, len(pruned)) if e in pruned
             else EpochSpec(e, FULL, -1, 1.0, num_samples, False) for e in range(epochs)]
    return EpochPlan(tuple(specs), num_samples)
