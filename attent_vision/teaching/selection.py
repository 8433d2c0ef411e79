"""``select``: the pure selection function of the public API."""

import torch

from .strategies import STRATEGIES, SelectionStrategy, SoftSelection


def build_strategy(strategy: str, temperature: float = 1.0, normalization: str = "softmax") -> SelectionStrategy:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown selection strategy '{strategy}'; choose from {list(STRATEGIES)}")
    if strategy == "soft":
        return SoftSelection(temperature=temperature, normalization=normalization)
    return STRATEGIES[strategy]()


def select(
    scores: torch.Tensor,
    k: int,
    strategy: str,
    *,
    temperature: float = 1.0,
    normalization: str = "softmax",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Choose ``k`` of ``len(scores)`` samples. scores: N -> indices: k (long, distinct, in selection order).

    strategy: ``random`` (uniform), ``hard`` (top-k), ``soft`` (Gumbel-top-k with ``temperature`` and
    ``normalization``). The result depends only on the scores and the generator's state, so identically seeded
    generators give identical subsets on every rank.
    """
    n = scores.numel()
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be in [1, {n}]")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    scores = scores.detach().float().cpu()
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("scores contain NaN or inf; the scoring pass diverged (lower the learning rate?)")
    return build_strategy(strategy, temperature, normalization).select(scores, k, generator)
