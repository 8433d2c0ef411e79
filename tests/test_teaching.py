"""The AtteNT core in isolation: schedules, selection strategies, the epoch plan, the sampler, the teacher."""

import math

import pytest
import torch

from attent_vision.engine.sampler import EpochBatchSampler, ShardedBatches, step_shapes
from attent_vision.teaching import (
    LearnerAccess,
    Teacher,
    build_plan,
    build_strategy,
    interval_schedule,
    ratio_schedule,
    select,
    subset_size,
)
from attent_vision.teaching.plan import FULL, SUBSET


# ------------------------------------------------------------------------------------------------- schedules
def test_cosine_ratios_equal_the_reference_values():
    got = [round(ratio_schedule("cosine", c, 10, 0.2, 0.8), 3) for c in range(10)]
    assert got == [0.200, 0.218, 0.270, 0.350, 0.448, 0.552, 0.650, 0.730, 0.782, 0.800]


def test_incremental_ratio_and_intervals_equal_the_reference_values():
    assert [round(ratio_schedule("incremental", c, 4, 0.2, 0.8), 3) for c in range(4)] == [0.2, 0.4, 0.6, 0.8]
    assert [interval_schedule("incremental", c, 10, 5, 10) for c in range(10)] == [5, 5, 6, 6, 7, 7, 8, 8, 9, 10]
    assert [interval_schedule("fixed", c, 10, 5, 10) for c in range(10)] == [5] * 10
    assert ratio_schedule("constant", 3, 10, 0.5, 1.0) == 0.5
    # A single cycle sits at the end of the schedule (p = 1).
    assert ratio_schedule("cosine", 0, 1, 0.2, 0.8) == 0.8 and interval_schedule("incremental", 0, 1, 5, 10) == 10


def test_subset_size_rule():
    assert subset_size(10, 0.3) == 3 and subset_size(10, 0.01) == 1 and subset_size(10, 1.0) == 10
    assert subset_size(64431, 0.2) == 12886


# ------------------------------------------------------------------------------------------------- selection
def test_hard_returns_exactly_the_top_k():
    scores = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    chosen = select(scores, 37, "hard")
    assert set(chosen.tolist()) == set(torch.topk(scores, 37).indices.tolist())


def test_soft_at_tiny_temperature_equals_hard():
    scores = torch.randn(500, generator=torch.Generator().manual_seed(1))
    for seed in range(5):
        soft = select(scores, 50, "soft", temperature=1e-6, generator=torch.Generator().manual_seed(seed))
        assert set(soft.tolist()) == set(select(scores, 50, "hard").tolist())


def test_soft_at_huge_temperature_is_uniform():
    # Scores span a range that would make softmax sampling extremely peaked at T = 1.
    scores = torch.linspace(0, 20, 20)
    counts = torch.zeros(20)
    draws = 4000
    g = torch.Generator().manual_seed(2)
    for _ in range(draws):
        counts[select(scores, 5, "soft", temperature=1e6, generator=g)] += 1
    expected = draws * 5 / 20
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 43.8  # the 0.1% critical value of chi-square with 19 degrees of freedom


def _release_soft_select(scores, k, temperature, generator):
    """The public release's Gumbel-top-k: it divides by the temperature *after* adding the noise."""
    log_p = torch.log_softmax(scores.double(), 0)
    g = -torch.log(-torch.log(torch.rand(scores.numel(), generator=generator, dtype=torch.float64)))
    return torch.topk((log_p + g) / temperature, k).indices


def test_temperature_changes_the_selection_unlike_the_release():
    scores = torch.linspace(0, 3, 200)
    def mean_selected(fn, t):
        g = torch.Generator().manual_seed(3)
        return sum(float(scores[fn(t, g)].mean()) for _ in range(200)) / 200
    ours = lambda t, g: select(scores, 20, "soft", temperature=t, generator=g)  # noqa: E731
    release = lambda t, g: _release_soft_select(scores, 20, t, g)  # noqa: E731
    assert mean_selected(ours, 0.3) > mean_selected(ours, 1.0) + 0.2 > mean_selected(ours, 10.0) + 0.4
    # The release's temperature is a no-op: same generator state, same subset, whatever T.
    assert mean_selected(release, 0.3) == pytest.approx(mean_selected(release, 10.0))


@pytest.mark.parametrize("normalization", ["zscore", "rank"])
def test_scale_free_normalisations_ignore_the_loss_scale(normalization):
    scores = torch.rand(300, generator=torch.Generator().manual_seed(4))
    for seed in range(3):
        a = select(scores, 30, "soft", normalization=normalization, generator=torch.Generator().manual_seed(seed))
        b = select(scores * 25 + 7, 30, "soft", normalization=normalization,
                   generator=torch.Generator().manual_seed(seed))
        assert torch.equal(a, b)
    # softmax, by contrast, becomes much peakier when losses are 25x larger.
    a = select(scores, 30, "soft", generator=torch.Generator().manual_seed(0))
    b = select(scores * 25, 30, "soft", generator=torch.Generator().manual_seed(0))
    assert float(scores[b].mean()) > float(scores[a].mean()) + 0.2


def test_random_ignores_scores_and_selection_is_reproducible():
    strategy = build_strategy("random")
    assert not strategy.needs_scores
    scores = torch.randn(100)
    a = select(scores, 10, "random", generator=torch.Generator().manual_seed(5))
    b = select(-scores, 10, "random", generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and len(set(a.tolist())) == 10


def test_selection_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown selection strategy"):
        select(torch.zeros(3), 1, "softest")
    with pytest.raises(ValueError, match="temperature"):
        select(torch.zeros(3), 1, "soft", temperature=0.0)
    with pytest.raises(ValueError, match="NaN"):
        select(torch.tensor([0.0, float("nan")]), 1, "hard")


# ------------------------------------------------------------------------------------------------- the plan
@pytest.mark.parametrize("epochs,cycles", [(26, 5), (29, 5), (101, 10), (800, 10), (12, 11)])
def test_plan_covers_every_epoch_of_the_budget(epochs, cycles):
    plan = build_plan(num_samples=1000, epochs=epochs, strategy="soft", total_cycles=cycles, initial_interval=2,
                      max_interval=4)
    assert [e.epoch for e in plan.epochs] == list(range(epochs))
    assert plan.epochs[0].kind == FULL
    cycle_len = (epochs - 1) // cycles
    for c in range(cycles):
        in_cycle = [e for e in plan.epochs if e.cycle == c]
        assert len(in_cycle) == cycle_len
        n_subset = min(interval_schedule("incremental", c, cycles, 2, 4), cycle_len)
        assert [e.kind for e in in_cycle] == [SUBSET] * n_subset + [FULL] * (cycle_len - n_subset)
        assert in_cycle[0].select and all(e.size == subset_size(1000, in_cycle[0].ratio) for e in in_cycle[:n_subset])
    leftovers = [e for e in plan.epochs if e.cycle == -1]
    assert len(leftovers) == 1 + (epochs - 1) % cycles
    assert plan.total_steps(64) == sum(math.ceil(e.size / 64) for e in plan.epochs)


def test_plan_reselection_and_full_data_baseline():
    soft = build_plan(num_samples=100, epochs=11, strategy="soft", total_cycles=2, initial_interval=3, max_interval=3,
                      reselect_every_subset_epoch=True)
    hard = build_plan(num_samples=100, epochs=11, strategy="hard", total_cycles=2, initial_interval=3, max_interval=3)
    assert [e.epoch for e in soft.selections] == [1, 2, 3, 6, 7, 8]
    assert [e.epoch for e in hard.selections] == [1, 6]
    full = build_plan(num_samples=100, epochs=11, strategy="none")
    assert all(e.kind == FULL for e in full.epochs) and full.work_fraction == 1.0
    with pytest.raises(ValueError, match="epochs >= total_cycles"):
        build_plan(num_samples=100, epochs=5, strategy="soft", total_cycles=5)


# ------------------------------------------------------------------------------------------------- sampler
def _keys(sampler):
    return [k for micro in sampler for k in micro]


def test_sampler_reshuffles_every_epoch_and_trains_only_the_subset():
    sampler = EpochBatchSampler(num_samples=50, global_batch=8, micro_batch=8, seed=0)
    sampler.set_epoch(1)
    first = [k[0] for k in _keys(sampler)]
    sampler.set_epoch(2)
    second = [k[0] for k in _keys(sampler)]
    assert sorted(first) == sorted(second) == list(range(50)) and first != second
    sampler.set_epoch(1)
    assert [k[0] for k in _keys(sampler)] == first  # the order is a function of (seed, epoch) only
    subset = torch.tensor([3, 7, 11, 19, 23])
    sampler.set_epoch(3, subset)
    assert sorted(k[0] for k in _keys(sampler)) == subset.tolist()


def test_rank_shards_are_disjoint_cover_the_subset_and_pad_with_zero_weight():
    subset = torch.arange(0, 100, 3)  # 34 samples, not divisible by 4 ranks
    shards = []
    for rank in range(4):
        s = EpochBatchSampler(num_samples=100, global_batch=16, micro_batch=2, seed=1, rank=rank, world_size=4)
        s.set_epoch(5, subset)
        shards.append(_keys(s))
    real = [k[0] for shard in shards for k in shard if k[2] > 0]
    assert sorted(real) == subset.tolist()  # each subset sample exactly once across ranks
    assert len({len(shard) for shard in shards}) == 1  # ranks run the same number of micro-batches
    assert sum(k[2] == 0 for shard in shards for k in shard) == 2  # 34 = 2 x 16 + 2: two ranks padded
    shapes = step_shapes(34, 16, 4, 2)
    assert [(s.global_count, s.micro_batches) for s in shapes] == [(16, 2), (16, 2), (2, 1)]


def test_resuming_mid_epoch_skips_exactly_the_steps_done():
    s = EpochBatchSampler(num_samples=40, global_batch=8, micro_batch=4, seed=2)
    s.set_epoch(0)
    all_keys = _keys(s)
    s.set_epoch(0, start_step=3)
    assert _keys(s) == all_keys[24:] and len(s) == 4


def test_sharded_batches_visit_each_sample_once():
    seen = []
    for rank in range(3):
        seen += [k[0] for b in ShardedBatches(torch.arange(10), 3, rank=rank, world_size=3) for k in b]
    assert sorted(seen) == list(range(10))


# ------------------------------------------------------------------------------------------------- teacher
def access_for(scores: torch.Tensor, calls: list | None = None) -> LearnerAccess:
    """A learner whose per-sample loss is ``scores[index]``; ``calls`` records each scoring pass."""

    def batches(indices, epoch, draw=0):
        if calls is not None:
            calls.append(epoch)
        return [{"index": indices}]

    return LearnerAccess(score_batches=batches, per_task_losses=lambda batch: scores[batch["index"]])


def test_teacher_scores_only_when_needed_and_repeats_selections_from_the_seed():
    plan = build_plan(num_samples=30, epochs=7, strategy="hard", total_cycles=2, initial_interval=2, max_interval=2)
    calls = []
    teacher = Teacher(plan, build_strategy("hard"), seed=0, access=access_for(torch.arange(30.0), calls))
    picked = [teacher.subset_for_epoch(e, step=i) for i, e in enumerate(plan.epochs)]
    assert [p is None for p in picked] == [True, False, False, True, False, False, True]
    assert len(calls) == 2  # one pass per selection, none for full epochs or repeated subset epochs
    k = plan.epochs[1].size
    assert picked[1].tolist() == list(range(30 - k, 30))
    assert teacher.samples_scored == 60 and teacher.scoring_passes == 2

    calls.clear()
    random_teacher = Teacher(plan, build_strategy("random"), seed=0, access=access_for(torch.arange(30.0), calls))
    a = [random_teacher.subset_for_epoch(e, 0) for e in plan.epochs]
    assert calls == []  # random needs no scoring pass
    again = Teacher(plan, build_strategy("random"), seed=0)
    b = [again.subset_for_epoch(e, 0) for e in plan.epochs]
    assert all((x is None and y is None) or torch.equal(x, y) for x, y in zip(a, b))


def test_teacher_state_round_trips():
    plan = build_plan(num_samples=20, epochs=5, strategy="soft", total_cycles=2, initial_interval=1, max_interval=1)
    teacher = Teacher(plan, build_strategy("soft"), seed=3, access=access_for(torch.rand(20)))
    teacher.subset_for_epoch(plan.epochs[1], 5)
    teacher.observe(torch.tensor([1, 2]), torch.tensor([9.0, 8.0]), torch.tensor([1.0, 0.0]), 6)
    other = Teacher(plan, build_strategy("soft"), seed=3)
    other.load_state_dict(teacher.state_dict())
    assert torch.equal(other.subset, teacher.subset) and other.history == teacher.history
    assert other.table.current[1, 0] == 9.0 and other.table.step[2] == 5  # weight-0 padding is not recorded
    assert other.samples_scored == teacher.samples_scored == 20
    # Resuming mid-epoch returns the epoch's selection without selecting again.
    assert torch.equal(other.subset_for_epoch(plan.epochs[1], 7, resuming=True), teacher.subset)
    assert other.last_selection is None and len(other.history) == 1


def test_samples_that_failed_to_load_are_never_selected():
    plan = build_plan(num_samples=10, epochs=3, strategy="hard", total_cycles=2, initial_interval=1, max_interval=1,
                      initial_ratio=0.3, final_ratio=0.3)
    scores = torch.arange(10.0)
    scores[9] = float("-inf")  # the scoring pass could not load sample 9 (skip_bad_samples)
    teacher = Teacher(plan, build_strategy("hard"), seed=0, access=access_for(scores))
    subset = teacher.subset_for_epoch(plan.epochs[1], 0)
    assert subset.tolist() == [6, 7, 8]
    soft = Teacher(plan, build_strategy("soft", temperature=100.0), seed=0, access=access_for(scores))
    for epoch in range(20):
        spec = plan.epochs[1].__class__(**{**plan.epochs[1].__dict__, "epoch": epoch})
        assert 9 not in soft.subset_for_epoch(spec, 0).tolist()


def test_full_data_is_a_strategy_with_a_full_plan():
    plan = build_plan(num_samples=10, epochs=4, strategy="none")
    assert all(e.kind == FULL for e in plan.epochs) and plan.work_fraction == 1.0
    teacher = Teacher(plan, build_strategy("none"), seed=0)
    assert [teacher.subset_for_epoch(e, 0) for e in plan.epochs] == [None] * 4 and teacher.history == []
    with pytest.raises(ValueError, match="unknown selection strategy"):
        build_plan(num_samples=10, epochs=4, strategy="best")
