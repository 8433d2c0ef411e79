"""Free scores with a budgeted refresh (teaching.score_source=training) and the cost cap on scoring: which samples
a refresh re-scores, the starvation bound, score ages, and how the cap shrinks or skips a pass."""

import math

import pytest
import torch

from attent_vision.seeds import generator
from attent_vision.teaching import LearnerAccess, Teacher, build_plan, build_strategy
from attent_vision.teaching.refresh import refresh_count, score_ages, stalest
from attent_vision.teaching.scoring_budget import ScoringBudget


def test_stalest_orders_never_scored_then_oldest_and_skips_failed_samples():
    steps = torch.tensor([5, -1, 3, 9, 3, -1, 7, 0])
    eligible = torch.ones(8, dtype=torch.bool)
    eligible[7] = False  # failed to load: never refreshed, never selected
    picked = stalest(steps, eligible, 5, generator(0))
    assert set(picked[:2].tolist()) == {1, 5} and set(picked[2:4].tolist()) == {2, 4} and picked[4] == 0
    assert stalest(steps, eligible, 100, generator(0)).numel() == 7
    # Ties are broken by the seeded generator: the same on every rank, different between (seed, epoch) draws.
    assert torch.equal(stalest(steps, eligible, 3, generator(1)), stalest(steps, eligible, 3, generator(1)))
    ties = torch.zeros(50, dtype=torch.long)
    orders = {tuple(stalest(ties, torch.ones(50, dtype=torch.bool), 5, generator(s)).tolist()) for s in range(5)}
    assert len(orders) > 1


def test_refresh_count_is_a_ceiling_and_never_empty():
    assert refresh_count(96, 0.1) == 10 and refresh_count(100, 0.1) == 10 and refresh_count(5, 0.01) == 1
    assert refresh_count(20, 1.0) == 20


def test_score_ages_over_eligible_scored_samples():
    steps = torch.tensor([10, 4, -1, 0])
    ages = score_ages(steps, torch.tensor([True, True, True, False]), step=12)
    assert ages == {"score_age_mean": 5.0, "score_age_max": 8, "never_scored": 1}


def access_for(scores: torch.Tensor, log: list, work=lambda: (0.0, 0)) -> LearnerAccess:
    """A learner whose loss for a sample is ``scores[index]``; ``log`` gets the indices of every scoring pass."""

    def batches(indices, epoch, draw=0):
        log.append(indices.tolist())
        return [{"index": indices}]

    return LearnerAccess(score_batches=batches, per_task_losses=lambda b: scores[b["index"]], work_so_far=work)


def free_score_teacher(n, epochs, strategy, fraction, log, scores=None, budget=ScoringBudget(None), work=None):
    plan = build_plan(num_samples=n, epochs=epochs, strategy=strategy, total_cycles=1, initial_interval=epochs - 1,
                      max_interval=epochs - 1, initial_ratio=0.3, final_ratio=0.3, reselect_every_subset_epoch=True)
    scores = torch.arange(float(n)) if scores is None else scores
    access = access_for(scores, log, work or (lambda: (0.0, 0)))
    return Teacher(plan, build_strategy(strategy), seed=0, score_source="training", refresh_fraction=fraction,
                   budget=budget, access=access), plan


@pytest.mark.parametrize("train_on_subset", [False, True])
def test_every_sample_is_rescored_within_the_starvation_bound(train_on_subset):
    """hard selection with fixed scores keeps choosing the same top 30%, so the other samples are only ever
    re-scored by refreshes; none may wait longer than ceil(1 / refresh_fraction) selections."""
    n, fraction, log = 40, 0.15, []
    teacher, plan = free_score_teacher(n, 25, "hard", fraction, log)
    bound = math.ceil(1 / fraction)
    last_rescored = torch.full((n,), -1)
    step = 0
    for spec in plan.epochs:
        steps_before = teacher.table.step.clone()
        subset = teacher.subset_for_epoch(spec, step)
        if spec.select:
            selection = len(teacher.history) - 1
            assert len(log[-1]) == refresh_count(n, fraction)
            last_rescored[teacher.table.step != steps_before] = selection
            assert int((selection - last_rescored).max()) < bound, "a sample went un-scored past the bound"
        step += 1
        trained = torch.arange(n) if subset is None else subset
        if train_on_subset:
            teacher.observe(trained, trained.float(), torch.ones(trained.numel()), step)
            last_rescored[trained] = len(teacher.history) - 1
    assert len(teacher.history) == 24


def test_refresh_rescores_the_stalest_and_records_ages():
    n, log = 20, []
    teacher, plan = free_score_teacher(n, 4, "hard", 0.25, log)
    teacher.observe(torch.arange(n), torch.arange(float(n)), torch.ones(n), step=0)  # a full epoch of free scores
    teacher.observe(torch.arange(10, 20), torch.arange(10.0, 20.0), torch.ones(10), step=3)  # half trained again
    teacher.subset_for_epoch(plan.epochs[1], step=4)
    assert set(log[-1]) <= set(range(10)) and len(log[-1]) == 5  # the 5 stalest are among the 10 oldest
    record = teacher.history[-1]
    assert record.score_source == "training" and record.samples_scored == 5
    assert record.refresh_decision == "uncapped" and record.refresh_requested == 5
    # A training step's score is stamped with the update it feeds (step + 1). Ages at step 4: five refreshed (0),
    # five from the step-0 training (3), ten from the step-3 training (0).
    assert record.score_age_max == 3 and record.score_age_mean == pytest.approx(5 * 3 / 20)


def test_budget_arithmetic_within_shrunk_skipped_uncapped():
    cap = ScoringBudget(0.05)
    # 100 s of wall, 2 s of scoring so far at 0.01 s per sample: n <= (5 - 2) / (0.01 * 0.95) = 315.8.
    kwargs = dict(wall_s=100.0, scoring_s=2.0, samples_trained=10_000, samples_scored=200)
    assert cap.allowed(300, **kwargs) == (300, "within cap")
    assert cap.allowed(1000, **kwargs) == (315, "shrunk by cap")
    assert cap.allowed(1000, **{**kwargs, "scoring_s": 5.0}) == (0, "skipped by cap")
    assert ScoringBudget(None).allowed(1000, **kwargs) == (1000, "uncapped")
    # Before any pass the cost is prior_cost_ratio x the training cost per sample: 0.5 x 100 s / 10,000 samples.
    prior = dict(wall_s=100.0, scoring_s=0.0, samples_trained=10_000, samples_scored=0)
    assert cap.allowed(10_000, **prior) == (math.floor(5.0 / (0.005 * 0.95)), "shrunk by cap")


def test_cap_shrinks_the_refresh_to_its_stalest_part_and_then_skips():
    n, log = 40, []
    wall = {"s": 10.0}
    # 10 s of run, 400 samples trained -> prior cost 0.5 x 10 / 400 = 0.0125 s: n <= 0.5 / (0.0125 x 0.95) = 42.
    teacher, plan = free_score_teacher(n, 6, "hard", 1.0, log, budget=ScoringBudget(0.05),
                                       work=lambda: (wall["s"], 400))
    teacher.observe(torch.arange(n), torch.arange(float(n)), torch.ones(n), step=0)
    teacher.observe(torch.arange(20, 40), torch.arange(20.0, 40.0), torch.ones(20), step=1)
    teacher.subset_for_epoch(plan.epochs[1], step=2)
    assert teacher.history[-1].refresh_decision == "within cap" and len(log[-1]) == n
    teacher.scoring_seconds = 0.5  # the pass was measured at 0.5 s for 40 samples: 0.0125 s each
    wall["s"] = 12.0  # n <= (0.6 - 0.5) / (0.0125 x 0.95) = 8.4: shrink to the 8 stalest
    teacher.observe(torch.arange(8, 40), torch.arange(8.0, 40.0), torch.ones(32), step=3)
    teacher.subset_for_epoch(plan.epochs[2], step=4)
    assert teacher.history[-1].refresh_decision == "shrunk by cap" and sorted(log[-1]) == list(range(8))
    teacher.scoring_seconds = 10.0  # far over the cap: the next refresh is skipped, the selection still happens
    passes = len(log)
    assert teacher.subset_for_epoch(plan.epochs[3], step=5) is not None
    assert teacher.history[-1].refresh_decision == "skipped by cap" and len(log) == passes
    assert teacher.history[-1].samples_scored == 0


def test_free_score_state_round_trips_with_ages_and_scoring_time():
    log = []
    teacher, plan = free_score_teacher(20, 4, "hard", 0.25, log)
    teacher.observe(torch.arange(20), torch.rand(20), torch.ones(20), step=3)
    teacher.subset_for_epoch(plan.epochs[1], step=4)
    other, _ = free_score_teacher(20, 4, "hard", 0.25, [])
    other.load_state_dict(teacher.state_dict())
    assert torch.equal(other.table.step, teacher.table.step) and other.scoring_seconds == teacher.scoring_seconds
    assert torch.equal(other.subset_for_epoch(plan.epochs[2], 5), teacher.subset_for_epoch(plan.epochs[2], 5))


def test_a_training_step_right_after_a_refresh_wins_the_rank_merge():
    """Under DDP a refreshed sample trained by rank 1 in the next step must end with rank 1's value on every rank,
    as in one process (where the training loss simply overwrites the refresh)."""
    log = []
    teacher, plan = free_score_teacher(6, 4, "hard", 1.0, log)
    teacher.subset_for_epoch(plan.epochs[1], step=4)  # refresh of every sample, stamped 4
    rank0, rank1 = teacher.table, type(teacher.table)(6)
    rank1.load_state_dict(rank0.state_dict())
    twin, _ = free_score_teacher(6, 4, "hard", 1.0, [])
    twin.table = rank1
    twin.observe(torch.tensor([3]), torch.tensor([9.0]), torch.ones(1), step=4)  # rank 1 trains sample 3 at once
    flat = lambda name: torch.cat([getattr(rank0, name).reshape(-1), getattr(rank1, name).reshape(-1)])  # noqa: E731
    parts = iter([flat("step"), flat("current"), flat("previous")])  # the order merge gathers them in
    rank0.merge(lambda x: next(parts))
    assert rank0.current[3, 0] == 9.0 and rank0.step[3] == 5
    assert rank0.previous[3, 0] == twin.table.previous[3, 0]  # the refresh's value, now the previous one
