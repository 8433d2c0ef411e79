"""Gumbel-top-k: sample k distinct samples with probability weighted by score.

keys_i = log(p_i) / T + g_i with g_i ~ Gumbel(0, 1); the k largest keys are a sample without replacement from
p^(1/T). T -> 0 gives hard top-k; T -> infinity gives a uniform subset. (The release divided by T *after* adding
the noise, which scales every key alike and leaves the selection unchanged: its temperature had no effect.)

How scores become probabilities (``normalization``):
    softmax  p ∝ exp(s)                    the release's choice; depends on the scale of the loss
    sigmoid  p ∝ sigmoid(s)                the release's other choice; nearly uniform for large losses
    zscore   p ∝ exp((s - mean) / std)     scale-free: only relative standing matters
    rank     p ∝ rank(s) (1..N)            scale-free and robust to outliers
"""

import torch
import torch.nn.functional as F

from .base import SelectionStrategy

NORMALIZATIONS = ("softmax", "sigmoid", "zscore", "rank")


def log_probabilities(scores: torch.Tensor, normalization: str) -> torch.Tensor:
    """scores: N -> log p: N (sums to 1 in probability space)."""
    s = scores.double()
    if normalization == "softmax":
        return F.log_softmax(s, dim=0)
    if normalization == "sigmoid":
        return F.log_softmax(F.logsigmoid(s), dim=0)
    if normalization == "zscore":
        std = s.std() if s.numel() > 1 else s.new_tensor(1.0)
        return F.log_softmax((s - s.mean()) / std.clamp_min(1e-12), dim=0)
    if normalization == "rank":
        ranks = torch.empty_like(s)
        ranks[torch.argsort(s, stable=True)] = torch.arange(1, s.numel() + 1, dtype=s.dtype)
        return F.log_softmax(ranks.log(), dim=0)
    raise ValueError(f"unknown normalization '{normalization}'; choose from {list(NORMALIZATIONS)}")


class SoftSelection(SelectionStrategy):
    name = "soft"

    def __init__(self, temperature: float = 1.0, normalization: str = "softmax"):
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization '{normalization}'; choose from {list(NORMALIZATIONS)}")
        self.temperature = temperature
        self.normalization = normalization

    def select(self, scores: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        log_p = log_probabilities(scores, self.normalization)
        uniform = torch.rand(scores.numel(), generator=generator, dtype=torch.float64).clamp(1e-300, 1.0)
        gumbel = -torch.log(-torch.log(uniform))
        keys = log_p / self.temperature + gumbel
        return torch.argsort(keys, descending=True, stable=True)[:k]
