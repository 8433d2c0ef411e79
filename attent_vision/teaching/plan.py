"""The epoch plan: every epoch of the budget decided up front.

An epoch budget E counts every epoch that runs, full or subset (docs/method.md, "The run, epoch by epoch"):
one initial full epoch, then C cycles of L = (E - 1) // C epochs, each starting with min(interval_c, L) subset
epochs (a selection before the first; with ``reselect_every_subset_epoch``, or for a strategy that always
reselects (rs2), before each) and filling the rest with full epochs, then the (E - 1) % C leftover epochs as full
epochs. ``prune`` (InfoBatch-style) plans instead one full epoch, then pruned epochs (a selection before each) while
the epoch index is below delta x E, then full epochs for the tail. Because the plan is known before training, the
learning-rate schedule spans exactly the optimizer steps that will run, and nothing of the budget is dropped; its
warm-up is counted in full-data epochs, so it lasts the same optimizer steps for every plan of a run length.
"""

import math
from dataclasses import dataclass

from .schedules import interval_schedule, ratio_schedule, subset_size
from .strategies import STRATEGIES

FULL, SUBSET = "full", "subset"


@dataclass(frozen=True)
class EpochSpec:
    """One planned epoch. ``cycle`` is -1 outside cycles; ``select`` means (re)score and (re)select before it."""

    epoch: int
    kind: str
    cycle: int
    ratio: float
    size: int
    select: bool
    interval: int = 0


@dataclass(frozen=True)
class EpochPlan:
    epochs: tuple[EpochSpec, ...]
    num_samples: int

    def steps_in_epoch(self, epoch: int, batch_size: int) -> int:
        """Optimizer steps of ``epoch``: ceil(size / batch) (the last batch may be short; no sample is dropped)."""
        return math.ceil(self.epochs[epoch].size / batch_size)

    def total_steps(self, batch_size: int) -> int:
        return sum(self.steps_in_epoch(e.epoch, batch_size) for e in self.epochs)

    def steps_before(self, epoch: int, batch_size: int) -> int:
        return sum(self.steps_in_epoch(e, batch_size) for e in range(epoch))

    def warmup_steps(self, warmup_epochs: float, batch_size: int) -> int:
        """Warm-up length in optimizer steps: ``warmup_epochs`` full-data epochs' worth, round(warmup_epochs x
        ceil(N / batch)) (fractions allowed), capped at the plan's total steps.

        Counted on full data, not on the planned epochs, so that every plan of one run length (full data, random,
        soft, hard, prune, rs2) warms up over the same optimizer steps: counting planned epochs would give subset
        plans, whose early epochs are short, a shorter warm-up, a confound in every comparison with full data."""
        full_epoch = math.ceil(self.num_samples / batch_size)
        return min(round(warmup_epochs * full_epoch), self.total_steps(batch_size))

    @property
    def samples_planned(self) -> int:
        return sum(e.size for e in self.epochs)

    @property
    def work_fraction(self) -> float:
        """Training samples relative to the full-data baseline with the same epoch budget."""
        return self.samples_planned / (len(self.epochs) * self.num_samples)

    @property
    def selections(self) -> list[EpochSpec]:
        return [e for e in self.epochs if e.select]

    def table(self, batch_size: int) -> str:
        """A compact text table of the plan, one row per cycle (plus the full epochs around cycles), and its
        expected training work."""
        rows = [f"{'cycle':>5} {'epochs':>9} {'ratio':>6} {'subset':>7} {'interval':>8} {'selections':>10} {'steps':>7}"]
        groups: dict[int, list[EpochSpec]] = {}
        for e in self.epochs:
            groups.setdefault(e.cycle if e.cycle >= 0 else -1 - (e.epoch > 0), []).append(e)
        for key in sorted(groups, key=lambda k: groups[k][0].epoch):
            es = groups[key]
            label = str(key + 1) if key >= 0 else "full"
            subset = [e for e in es if e.kind == SUBSET]
            rows.append(
                f"{label:>5} {es[0].epoch + 1:>4}-{es[-1].epoch + 1:<4} {(subset[0].ratio if subset else 1.0):>6.3f} "
                f"{(subset[0].size if subset else self.num_samples):>7} {len(subset):>8} "
                f"{sum(e.select for e in es):>10} {sum(self.steps_in_epoch(e.epoch, batch_size) for e in es):>7}"
            )
        rows.append(
            f"{len(self.epochs)} epochs, {self.total_steps(batch_size)} optimizer steps, {len(self.selections)} "
            f"selections; training work: {self.samples_planned} samples, {self.work_fraction:.3f} of full data"
        )
        return "\n".join(rows)


def build_plan(
    *,
    num_samples: int,
    epochs: int,
    strategy: str,
    total_cycles: int = 10,
    ratio: str = "incremental",
    initial_ratio: float = 0.2,
    final_ratio: float = 0.8,
    interval: str = "incremental",
    initial_interval: int = 5,
    max_interval: int = 10,
    reselect_every_subset_epoch: bool = False,
    prune_ratio: float = 0.5,
    prune_delta: float = 0.875,
) -> EpochPlan:
    """Plan ``epochs`` epochs over ``num_samples`` samples with selection ``strategy`` (a name in STRATEGIES;
    ``none`` plans full-data training)."""
    if num_samples < 1:
        raise ValueError("the training set is empty")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown selection strategy '{strategy}'; choose from {list(STRATEGIES)}")
    if not STRATEGIES[strategy].trains_on_subsets:
        return EpochPlan(tuple(EpochSpec(e, FULL, -1, 1.0, num_samples, False) for e in range(epochs)), num_samples)
    if not STRATEGIES[strategy].cyclic:
        return prune_plan(num_samples, epochs, prune_ratio, prune_delta)
    # rs2's fresh subset every subset epoch is what it is, whatever the selection config says.
    reselect_every_subset_epoch = reselect_every_subset_epoch or STRATEGIES[strategy].reselects_every_subset_epoch
    if epochs < total_cycles + 1:
        raise ValueError(f"AtteNT needs epochs >= total_cycles + 1 = {total_cycles + 1}, got {epochs}")
    cycle_len = (epochs - 1) // total_cycles
    specs = [EpochSpec(0, FULL, -1, 1.0, num_samples, False)]
    for c in range(total_cycles):
        r = ratio_schedule(ratio, c, total_cycles, initial_ratio, final_ratio)
        k = subset_size(num_samples, r)
        n_subset = min(interval_schedule(interval, c, total_cycles, initial_interval, max_interval), cycle_len)
        for j in range(cycle_len):
            epoch = len(specs)
            if j < n_subset:
                specs.append(EpochSpec(epoch, SUBSET, c, r, k, j == 0 or reselect_every_subset_epoch, n_subset))
            else:
                specs.append(EpochSpec(epoch, FULL, c, 1.0, num_samples, False, n_subset))
    while len(specs) < epochs:
        specs.append(EpochSpec(len(specs), FULL, -1, 1.0, num_samples, False))
    return EpochPlan(tuple(specs), num_samples)


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
