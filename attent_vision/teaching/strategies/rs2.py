"""RS2, repeated random sampling without replacement (Okanovic et al., ICLR 2024): the strongest known random
baseline, our implementation from the paper's description.

A fresh uniform subset before every subset epoch (the plan asks for one whatever
``selection.reselect_every_subset_epoch`` says), drawn so that every sample is trained once before any is trained
twice: the run's subsets are consecutive slices of a stream of passes, each pass an ordering of all N samples.
Pass p is a permutation seeded by (seed, STREAM_RS2, p). A subset that crosses the end of a pass takes the rest of
it (r samples, the tail T) and the start of the next; so that it holds no sample twice, the next pass moves T's
samples to its end (in their permuted order) and the subset's start comes from the others. That also spaces a
sample's two trainings evenly: the last trained in one pass are the last trained in the next.

Stateless and resume-safe: the draw depends only on the seed, N and the sizes of the earlier selections of the run
(``SelectionRound.earlier_sizes``: where each began and ended, hence which tails moved), so the strategy replays the
passes up to the current one (one permutation of N per pass, remembered between calls as a speed-up only). Scores
are ignored: no scoring pass runs. Every sample is chosen with probability k / N over a pass, so the unbiased
weights are all 1.

``scores`` has one entry per eligible sample (the teacher drops samples that failed to load and maps the positions
back), so the passes are orderings of range(len(scores)); if samples fail mid-run, the passes are replayed over the
samples that remain, and the once-per-pass guarantee holds again from the next pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import STRATEGIES, SelectionRound, SelectionStrategy

if TYPE_CHECKING:
    import torch


def crossing_tails(sizes: list[int], n: int) -> dict[int, int]:
    """Pass p -> r_p, the number of samples at the end of pass p - 1 taken by the subset that crossed into pass p
    (only passes entered mid-subset are listed). ``sizes``: the subsets' sizes in order; pass p starts after p x n
    samples have been drawn."""
    tails, drawn = {}, 0
    for size in sizes:
        first, last = drawn // n + 1, (drawn + size - 1) // n  # passes whose start lies strictly inside the subset
        for p in range(first, last + 1):
            tails[p] = min(p * n - drawn, n)
        drawn += size
    return tails


@STRATEGIES.register()
class RS2Selection(SelectionStrategy):
    name = "rs2"
    description = "uniform subsets without replacement across epochs (RS2: every sample once before any twice)"
    needs_scores = False
    reselects_every_subset_epoch = True

    def __init__(self) -> None:
        # ((seed, n, p, tails of passes 1..p), pass p's ordering): replay continues from here instead of pass 0.
        self._latest: tuple[tuple, torch.Tensor] | None = None

    def select(self, scores: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        """Outside a run (no round): one uniform draw, as a run's first selection would be."""
        import torch

        return torch.randperm(scores.numel(), generator=generator)[:k]

    def select_weighted(self, scores: torch.Tensor, k: int, generator: torch.Generator
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        return self.select(scores, k, generator), torch.ones(k, dtype=torch.float64)

    def select_round(self, scores: torch.Tensor, k: int, generator: torch.Generator,
                     round: SelectionRound) -> torch.Tensor:
        """scores: N (ignored) -> the k samples at positions [drawn_before, drawn_before + k) of the run's stream of
        passes. Needs ``round.earlier_sizes`` once anything was drawn (where the earlier subsets crossed passes)."""
        import torch

        n = scores.numel()
        if not 1 <= k <= n:
            raise ValueError(f"rs2: k={k} must be in [1, {n}]")
        sizes = list(round.earlier_sizes)
        if sum(sizes) != round.drawn_before:
            raise ValueError(f"rs2 needs SelectionRound.earlier_sizes (the sizes of every earlier selection of the "
                             f"run, summing to drawn_before={round.drawn_before}); got {round.earlier_sizes}")
        start = round.drawn_before
        tails = crossing_tails(sizes + [k], n)
        first, offset = divmod(start, n)
        order = self._pass_order(round.seed, n, first, tails)
        if offset + k <= n:
            return order[offset:offset + k].clone()
        following = self._pass_order(round.seed, n, first + 1, tails)
        return torch.cat([order[offset:], following[:offset + k - n]])

    def select_weighted_round(self, scores: torch.Tensor, k: int, generator: torch.Generator,
                              round: SelectionRound) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        # Uniform inclusion (k / N per sample): every weight is k / (N * k / N) = 1.
        return self.select_round(scores, k, generator, round), torch.ones(k, dtype=torch.float64)

    def _pass_order(self, seed: int, n: int, p: int, tails: dict[int, int]) -> torch.Tensor:
        """Pass p's ordering of range(n): its own permutation, the tail the previous pass lost to a crossing subset
        moved to the end. Depends on every earlier pass's tail, so it is replayed from pass 0 (or the latest
        remembered pass on the same path)."""
        import torch

        from ...seeds import STREAM_RS2, generator

        def key(q: int) -> tuple:
            return seed, n, q, tuple(tails.get(i, 0) for i in range(1, q + 1))

        if self._latest is not None and self._latest[0][2] <= p and self._latest[0] == key(self._latest[0][2]):
            (_, _, done, _), order = self._latest
        else:
            done, order = 0, torch.randperm(n, generator=generator(seed, STREAM_RS2, 0))
        for q in range(done + 1, p + 1):
            perm = torch.randperm(n, generator=generator(seed, STREAM_RS2, q))
            r = tails.get(q, 0)
            if r:
                recent = torch.zeros(n, dtype=torch.bool)
                recent[order[n - r:]] = True
                moved = recent[perm]
                perm = torch.cat([perm[~moved], perm[moved]])
            order = perm
        self._latest = (key(p), order)
        return order
