"""Gumbel-top-k: sample k distinct samples with probability weighted by score.

keys_i = log(p_i) / T + g_i with g_i ~ Gumbel(0, 1); the k largest keys are a sample without replacement from
p^(1/T). T -> 0 gives hard top-k; T -> infinity gives a uniform subset. (The release divided by T *after* adding
the noise, which scales every key alike and leaves the selection unchanged: its temperature had no effect.)

How scores become probabilities (``normalization``):
    softmax  p ∝ exp(s)                    the release's choice; depends on the scale of the loss
    sigmoid  p ∝ sigmoid(s)                the release's other choice; nearly uniform for large losses
    zscore   p ∝ exp((s - mean) / std)     scale-free: only relative standing matters
    rank     p ∝ rank(s) (1..N)            scale-free and robust to outliers

Unbiased weights (``selection.reweight=unbiased``): Gumbel-top-k with weights w = p^(1/T) is priority sampling
without replacement with exponential ranks. Conditioning on the (k+1)-th largest key tau (rank conditioning, as in
priority sampling and bottom-k sketches), sample i is chosen exactly when its own key exceeds tau, which happens
with probability pi_i = P(log w_i + G > tau) = 1 - exp(-w_i e^(-tau)) for a standard Gumbel G. The Horvitz-Thompson
sum over the chosen samples of x_i / pi_i is then an unbiased estimate of the sum of x over all N samples, and
weights k / (N pi_i) make the subset's weighted mean an unbiased estimate of the full-data mean (their expected
mean is 1; they are not forced to mean exactly 1, which would trade the unbiasedness for a ratio estimator).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import STRATEGIES, SelectionStrategy

if TYPE_CHECKING:
    import torch

NORMALIZATIONS = ("softmax", "sigmoid", "zscore", "rank")


def log_probabilities(scores: torch.Tensor, normalization: str) -> torch.Tensor:
    """scores: N -> log p: N (sums to 1 in probability space)."""
    import torch
    import torch.nn.functional as F

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


@STRATEGIES.register()
class SoftSelection(SelectionStrategy):
    name = "soft"
    description = "a score-weighted random subset (Gumbel-top-k with a temperature)"

    @classmethod
    def from_config(cls, selection) -> "SoftSelection":
        return cls(temperature=selection.temperature, normalization=selection.normalization)

    def __init__(self, temperature: float = 1.0, normalization: str = "softmax"):
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization '{normalization}'; choose from {list(NORMALIZATIONS)}")
        self.temperature = temperature
        self.normalization = normalization

    def _keys(self, scores: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """scores: N -> (log w: N, keys: N), w = p^(1/T), keys = log w + Gumbel noise."""
        import torch

        log_w = log_probabilities(scores, self.normalization) / self.temperature
        uniform = torch.rand(scores.numel(), generator=generator, dtype=torch.float64).clamp(1e-300, 1.0)
        return log_w, log_w - torch.log(-torch.log(uniform))

    def select(self, scores: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        import torch

        return torch.argsort(self._keys(scores, generator)[1], descending=True, stable=True)[:k]

    def select_weighted(self, scores: torch.Tensor, k: int, generator: torch.Generator
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        log_w, keys = self._keys(scores, generator)
        order = torch.argsort(keys, descending=True, stable=True)
        chosen, n = order[:k], scores.numel()
        if k >= n:
            return chosen, torch.ones(k, dtype=torch.float64)
        tau = keys[order[k]]
        inclusion = -torch.expm1(-torch.exp(log_w[chosen] - tau))  # 1 - exp(-w e^-tau), exact for small values
        return chosen, k / (n * inclusion)
