"""The epoch plan: every epoch of the budget decided up front.

An epoch budget E counts every epoch that runs, full or subset (docs/method.md, "The run, epoch by epoch"):
one initial full epoch, then C cycles of L = (E - 1) // C epochs, each starting with min(interval_c, L) subset
epochs (a selection before the first; with ``reselect_every_subset_epoch``, or for a strategy that always
reselects (rs2), before each) and filling the rest with full epochs, then the (E - 1) % C leftover epochs as full
epochs. A strategy that is not ``cyclic`` plans its epochs itself (``prune``, InfoBatch-style: strategies/prune.py;
the records, EpochSpec and EpochPlan, are in epoch_plan.py). Because the plan is known before training, the
learning-rate schedule spans exactly the optimizer steps that will run, and nothing of the budget is dropped; its
warm-up is counted in full-data epochs, so it lasts the same optimizer steps for every plan of a run length.
"""

from .epoch_plan import FULL, SUBSET, EpochPlan, EpochSpec
from .schedules import interval_schedule, ratio_schedule, subset_size
from .selection import build_strategy
from .strategies import SelectionStrategy

__all__ = ["FULL", "SUBSET", "EpochPlan", "EpochSpec", "build_plan"]


def build_plan(
    *,
    num_samples: int,
    epochs: int,
    strategy: str | SelectionStrategy,
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
    """Plan ``epochs`` epochs over ``num_samples`` samples with selection ``strategy`` (a registered name, built with
    the prune options given here, or a strategy object; one that does not train on subsets plans full-data
    training, one that is not ``cyclic`` plans its own epochs)."""
    if num_samples < 1:
        raise ValueError("the training set is empty")
    if not isinstance(strategy, SelectionStrategy):
        strategy = build_strategy(strategy, prune_ratio=prune_ratio, prune_delta=prune_delta)
    if not strategy.trains_on_subsets:
        return EpochPlan(tuple(EpochSpec(e, FULL, -1, 1.0, num_samples, False) for e in range(epochs)), num_samples)
    if not strategy.cyclic:
        return strategy.plan_epochs(num_samples, epochs)
    # rs2's fresh subset every subset epoch is what it is, whatever the selection config says.
    reselect_every_subset_epoch = reselect_every_subset_epoch or strategy.reselects_every_subset_epoch
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
