"""The epoch plan's records: one :class:`EpochSpec` per planned epoch and the :class:`EpochPlan` they make, with the
step and sample accounting every reader shares (plan.py builds cyclic plans; a non-cyclic strategy builds its own,
strategies/prune.py)."""

import math
from dataclasses import dataclass

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

    @property
    def is_subset(self) -> bool:
        """Whether this epoch trains on a selected subset (else on full data)."""
        return self.kind == SUBSET


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
        rows = [f"{'cycle':>5} {'epochs':>9} {'ratio':>6} {'subset':>7} {'interval':>8} {'selections':>10} "
                f"{'steps':>7}"]
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
