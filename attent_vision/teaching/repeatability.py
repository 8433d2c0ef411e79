"""Score repeatability: does scoring a sample again give about the same rank?

A score can only guide selection if it repeats. At each selection the teacher scores a small random subset of the
eligible samples a second time, with independent draws (other masks; other crops where the scoring view augments),
and compares the second scores with the ones the selection uses: Spearman's rank correlation rho, and the overlap
of the two top sets (the share of the first measurement's top ``TOP_FRACTION`` that is also in the second's; equal
to ``TOP_FRACTION`` by chance, 1 when the two agree). The numbers go to the selection's record in results.json, the
tracker and ``attent-report``; ``benchmarks/score_repeatability.py`` measures every score option on a trained run.
"""

import math

import torch

TOP_FRACTION = 0.2  # the top fifth: the share a ratio-0.2 subset takes


def repeat_sample(eligible: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` indices (sorted) drawn uniformly from the eligible samples (N bool), all of them when fewer."""
    candidates = eligible.cpu().nonzero().squeeze(1)
    order = torch.randperm(candidates.numel(), generator=generator)[:count]
    return candidates[order].sort().values


def ranks(values: torch.Tensor) -> torch.Tensor:
    """values: M -> M ranks 0..M-1 (float64), ties averaged, as Spearman's rho asks."""
    v = values.double()
    order = torch.argsort(v, stable=True)
    r = torch.empty_like(v)
    r[order] = torch.arange(v.numel(), dtype=torch.float64)
    unique, inverse = torch.unique(v, return_inverse=True)
    if unique.numel() < v.numel():  # average the ranks of tied values
        sums = torch.zeros(unique.numel(), dtype=torch.float64).index_add_(0, inverse, r)
        counts = torch.zeros(unique.numel(), dtype=torch.float64).index_add_(0, inverse, torch.ones_like(r))
        r = (sums / counts)[inverse]
    return r


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rank correlation of two M-vectors (NaN when M < 3 or either is constant)."""
    if a.numel() < 3:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float((ra.square().sum() * rb.square().sum()).sqrt())
    return float((ra * rb).sum()) / denominator if denominator > 0 else float("nan")


def top_overlap(a: torch.Tensor, b: torch.Tensor, fraction: float = TOP_FRACTION) -> float:
    """The share of the ceil(fraction x M) highest of ``a`` that are also among the highest of ``b``."""
    k = max(1, math.ceil(fraction * a.numel() - 1e-9))
    top_a = set(torch.argsort(a.double(), descending=True, stable=True)[:k].tolist())
    top_b = set(torch.argsort(b.double(), descending=True, stable=True)[:k].tolist())
    return len(top_a & top_b) / k


def agreement(first: torch.Tensor, second: torch.Tensor) -> dict:
    """How well two measurements of the same M samples' scores agree, over the samples finite in both: the
    record kept with each selection (``repeatability`` in results.json)."""
    both = torch.isfinite(first) & torch.isfinite(second)
    a, b = first[both].cpu(), second[both].cpu()
    rho = spearman(a, b)
    return {"samples": int(a.numel()), "spearman": None if math.isnan(rho) else round(rho, 4),
            "top_overlap": round(top_overlap(a, b), 4) if a.numel() else None, "top_fraction": TOP_FRACTION}
