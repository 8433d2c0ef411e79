"""The statistics behind "does method A beat method B": per-seed paired differences with 95% intervals, and the
cost at which a method's frontier reaches a quality.

Two runs of one seed share their initialisation, data order and augmentation draws, so the seed-to-seed spread
cancels in their difference: the difference per seed is the sample, and its mean's Student-t interval says whether
A beats B beyond that spread (``paired_difference``). ``bootstrap_interval`` is the distribution-free alternative
(percentile bootstrap of the mean; with few seeds it is too narrow, which is why the t interval is the default).

Pure functions of numbers (numpy; scipy.stats for the t quantile, part of the ``report`` extra).
"""

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from ..extras import require

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A sample mean with its spread and confidence interval. ``low`` and ``high`` are None when the sample has a
    single value (no spread to judge by; ``std`` is NaN then); ``seeds`` are the seeds a paired difference used."""

    mean: float
    std: float  # sample standard deviation (n - 1 in the denominator); NaN when n == 1
    n: int
    low: float | None
    high: float | None
    level: float = LEVEL
    seeds: tuple = ()

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly above or wholly below zero (False without an interval)."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    def format(self, scale: float = 1.0, digits: int = 2, signed: bool = True) -> str:
        """"+1.23 [+0.45, +2.01] (n=6)": mean and interval times ``scale`` (100 turns fractions into percentage
        points); ``signed`` writes the sign of positive numbers too (differences); "(n=1, no interval)" alone."""
        sign = "+" if signed else ""

        def number(x):
            return f"{x * scale:{sign}.{digits}f}"

        if self.low is None or self.high is None:
            return f"{number(self.mean)} (n={self.n}, no interval)"
        return f"{number(self.mean)} [{number(self.low)}, {number(self.high)}] (n={self.n})"


def t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom."""
    stats = require("scipy.stats", "report", "attent-report's 95% intervals")
    return float(stats.t.ppf(q, df))


def _finite(values: Iterable[float]) -> np.ndarray:
    array = np.asarray([float(v) for v in values if v is not None], dtype=float)
    return array[np.isfinite(array)]


def _t_interval(sample: np.ndarray, level: float, seeds: tuple = ()) -> Interval:
    n = len(sample)
    mean = float(sample.mean())
    if n == 1:
        return Interval(mean, math.nan, 1, None, None, level, seeds)
    std = float(sample.std(ddof=1))
    half = t_quantile(0.5 + level / 2, n - 1) * std / math.sqrt(n)
    return Interval(mean, std, n, mean - half, mean + half, level, seeds)


def mean_interval(values: Iterable[float], level: float = LEVEL) -> Interval:
    """Mean, standard deviation and Student-t interval (mean ± t_{(1+level)/2, n-1} · std / sqrt(n)) of the finite
    ``values`` (e.g. one metric over seeds; None and NaN are left out). One value: no interval (low = high = None).
    No finite value: ValueError."""
    sample = _finite(values)
    if not len(sample):
        raise ValueError("no finite value to average (every value was missing, NaN or infinite)")
    return _t_interval(sample, level)


def seed_order(seeds) -> list:
    """Seeds in order: numbers first, numerically; then any other (a seed that could not be read) as text."""
    return sorted(seeds, key=lambda s: (0, s, "") if isinstance(s, (int, float)) else (1, 0, str(s)))


def interval_or_none(compute, *args, **kwargs) -> Interval | None:
    """``compute(*args, **kwargs)`` (one of the functions above), or None when no seed has the values it needs."""
    try:
        return compute(*args, **kwargs)
    except ValueError:
        return None


def _usable(value) -> bool:
    return value is not None and math.isfinite(value)


def _common_seeds(a: Mapping, b: Mapping, names: tuple[str, str], b_ok=_usable) -> list:
    """The seeds where a's value is finite and b's passes ``b_ok``, in order; ValueError naming each side's seeds
    when there is none."""
    usable_a = {s for s, v in a.items() if _usable(v)}
    usable_b = {s for s, v in b.items() if b_ok(v)}
    if not usable_a & usable_b:
        raise ValueError(f"no seed has a usable value in both {names[0]} and {names[1]}: {names[0]} has "
                         f"{seed_order(usable_a) or 'none'} (of seeds {seed_order(a) or 'none'}), {names[1]} "
                         f"has {seed_order(usable_b) or 'none'} (of seeds {seed_order(b) or 'none'})")
    return seed_order(usable_a & usable_b)


def paired_difference(a: Mapping[Hashable, float], b: Mapping[Hashable, float], level: float = LEVEL,
                      names: tuple[str, str] = ("a", "b")) -> Interval:
    """The per-seed differences a[seed] - b[seed] over the seeds where both have a finite value, as an Interval
    (``seeds``: those seeds, in order). Seeds only one side has are left out. One common seed: the difference with
    no interval (low = high = None, std NaN). None: ValueError naming each side's seeds (``names`` label them)."""
    seeds = _common_seeds(a, b, names)
    return _t_interval(np.asarray([float(a[s]) - float(b[s]) for s in seeds]), level, tuple(seeds))


def paired_ratio(a: Mapping[Hashable, float], b: Mapping[Hashable, float], level: float = LEVEL,
                 names: tuple[str, str] = ("a", "b")) -> Interval:
    """The per-seed ratios a[seed] / b[seed] (e.g. wall time vs the same seed's full-data run) over the seeds where
    both are finite and b is not zero, as an Interval; otherwise as ``paired_difference``."""
    seeds = _common_seeds(a, b, names, b_ok=lambda v: _usable(v) and v != 0)
    return _t_interval(np.asarray([float(a[s]) / float(b[s]) for s in seeds]), level, tuple(seeds))


def bootstrap_interval(diffs: Iterable[float], rng: np.random.Generator | int, n_boot: int = 10000,
                       level: float = LEVEL) -> Interval:
    """Percentile bootstrap interval of the mean of the finite ``diffs``: ``n_boot`` resamples with replacement
    drawn from ``rng`` (a numpy Generator, or a seed for one), the interval between their means' (1 - level) / 2
    and (1 + level) / 2 quantiles. The same seed gives the same interval. One value: no interval; none: ValueError."""
    sample = _finite(diffs)
    n = len(sample)
    if not n:
        raise ValueError("no finite difference to bootstrap (every value was missing, NaN or infinite)")
    mean = float(sample.mean())
    if n == 1:
        return Interval(mean, math.nan, 1, None, None, level)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    means = sample[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(mean, float(sample.std(ddof=1)), n, float(low), float(high), level)


def first_reach(points: list[tuple[float, float]], target: float, higher_is_better: bool = True
                ) -> tuple[float | None, bool]:
    """(cost, at_first_point): the first cost at which a frontier's quality reaches ``target``, and whether that
    is already its first point (so a smaller budget might have reached it too: the cost is an upper bound).

    ``points``: (cost, quality) in budget order (points whose quality is not finite are left out). Reaching is
    quality >= target (``higher_is_better``, e.g. accuracy) or quality <= target (a loss). Between the last point
    short of the target and the first that reaches it, the frontier is linear. (None, False) when it never does."""
    points = [(float(c), float(q)) for c, q in points if q is not None and math.isfinite(q)]
    sign = 1.0 if higher_is_better else -1.0
    for i, (cost, quality) in enumerate(points):
        if sign * (quality - target) < 0:
            continue
        if i == 0 or quality == target:  # exact: c0 + (c1 - c0) * 1.0 need not round back to c1
            return cost, i == 0
        c0, q0 = points[i - 1]  # q0 short of the target, quality at or past it: q0 != quality
        return c0 + (cost - c0) * (target - q0) / (quality - q0), False
    return None, False


def time_to_reach(points: list[tuple[float, float]], target: float, higher_is_better: bool = True) -> float | None:
    """The first cost at which the frontier ``points`` reaches ``target`` (see ``first_reach``; None: never).
    Use ``first_reach`` to know whether the answer is only an upper bound (already reached at the first point)."""
    return first_reach(points, target, higher_is_better)[0]
