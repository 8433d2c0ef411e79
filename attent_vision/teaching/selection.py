"""``select``: the pure selection function of the public API."""

import torch

from .settings import SelectionConfig
from .strategies import STRATEGIES, SelectionRound, SelectionStrategy


def build_strategy(strategy: str, temperature: float = 1.0, normalization: str = "softmax",
                   **options) -> SelectionStrategy:
    """The registered strategy ``strategy`` with these options (any other key of the ``selection`` group, e.g.
    prune_ratio, in ``options``; the ones it does not read are ignored)."""
    return STRATEGIES.get(strategy).from_config(
        SelectionConfig(strategy=strategy, temperature=temperature, normalization=normalization, **options))


def select(
    scores: torch.Tensor,
    k: int,
    strategy: str,
    *,
    temperature: float = 1.0,
    normalization: str = "softmax",
    generator: torch.Generator | None = None,
    round: SelectionRound | None = None,
) -> torch.Tensor:
    """Choose ``k`` of ``len(scores)`` samples. scores: N -> indices: k (long, distinct, in selection order).

    strategy: ``random`` (uniform), ``rs2`` (uniform, consecutive slices of a stream of permutations: give the
    ``round`` of a run's selection, otherwise it draws as a run's first), ``hard`` (top-k), ``soft`` (Gumbel-top-k
    with ``temperature`` and ``normalization``), ``prune``. The result depends only on the scores, the generator's
    state and the ``round``, so identically seeded generators give identical subsets on every rank.
    """
    n = scores.numel()
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be in [1, {n}]")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    scores = scores.detach().float().cpu()
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("scores contain NaN or inf; the scoring pass diverged (lower the learning rate?)")
    selector = build_strategy(strategy, temperature, normalization)
    if round is None:
        return selector.select(scores, k, generator)
    return selector.select_round(scores, k, generator, round)
