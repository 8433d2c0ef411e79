"""Ratio and interval schedules: pure functions of the cycle index (the paper's formulas; docs/method.md).

With progress p = c / (C - 1) for cycle c of C (p = 1 when C = 1):
    constant ratio:     r = r0
    cosine ratio:       r = r0 + (r1 - r0) * (1 - cos(pi p)) / 2
    incremental ratio:  r = r0 + (r1 - r0) * p
    fixed interval:     i = i0
    incremental:        i = i0 + floor((i_max - i0) * p)
"""

import math


def cycle_progress(cycle: int, total_cycles: int) -> float:
    if not 0 <= cycle < total_cycles:
        raise ValueError(f"cycle {cycle} is outside [0, {total_cycles})")
    return 1.0 if total_cycles == 1 else cycle / (total_cycles - 1)


def ratio_schedule(kind: str, cycle: int, total_cycles: int, initial_ratio: float, final_ratio: float) -> float:
    """Fraction of the dataset selected in ``cycle``, clamped to [initial_ratio, final_ratio]."""
    p = cycle_progress(cycle, total_cycles)
    if kind == "constant":
        return initial_ratio
    if kind == "cosine":
        r = initial_ratio + (final_ratio - initial_ratio) * (1 - math.cos(math.pi * p)) / 2
    elif kind == "incremental":
        r = initial_ratio + (final_ratio - initial_ratio) * p
    else:
        raise ValueError(f"unknown ratio schedule '{kind}'; choose constant, cosine or incremental")
    return min(max(r, initial_ratio), final_ratio)


def interval_schedule(kind: str, cycle: int, total_cycles: int, initial_interval: int, max_interval: int) -> int:
    """Number of consecutive subset epochs at the start of ``cycle``."""
    p = cycle_progress(cycle, total_cycles)
    if kind == "fixed":
        return initial_interval
    if kind == "incremental":
        return initial_interval + math.floor((max_interval - initial_interval) * p + 1e-9)
    raise ValueError(f"unknown interval schedule '{kind}'; choose fixed or incremental")


def subset_size(num_samples: int, ratio: float) -> int:
    """k = max(1, min(N, floor(N * r))), with a tolerance so that e.g. 0.3 * 10 gives 3, not 2."""
    return max(1, min(num_samples, math.floor(num_samples * ratio + 1e-9)))
