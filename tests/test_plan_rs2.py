"""Issue 22: warm-up counted in full-data optimizer steps, the RS2 random baseline, and the paper-time plan preset."""

import math

import pytest
import torch

from attent_vision.teaching.narration import plan_text
from attent_vision.teaching.plan import SUBSET, build_plan
from attent_vision.teaching.selection import build_strategy, select
from attent_vision.teaching.strategies import STRATEGIES, SelectionRound
from attent_vision.teaching.teacher import Teacher

from conftest import TRAIN_CONF_DIR, compose_train

# ------------------------------------------------------------------------------------------------- warm-up


def test_warmup_steps_are_equal_for_every_plan_of_one_run_length():
    n, epochs, batch = 100, 26, 16
    full_epoch = math.ceil(n / batch)  # 7 steps
    plans = {s: build_plan(num_samples=n, epochs=epochs, strategy=s, total_cycles=5, initial_interval=2,
                           max_interval=4) for s in ("none", "random", "rs2", "soft", "hard", "prune")}
    for warmup in (1, 2, 2.5, 7):
        steps = {s: p.warmup_steps(warmup, batch) for s, p in plans.items()}
        assert set(steps.values()) == {round(warmup * full_epoch)}, (warmup, steps)
    # the subset plans are really shorter than full data: counting planned epochs would have differed
    assert plans["soft"].total_steps(batch) < plans["none"].total_steps(batch)
    assert plans["soft"].steps_before(2, batch) < 2 * full_epoch


def test_warmup_is_capped_at_the_plans_total_steps():
    plan = build_plan(num_samples=100, epochs=11, strategy="hard", total_cycles=2, initial_interval=3, max_interval=3)
    total = plan.total_steps(32)
    assert plan.warmup_steps(1000, 32) == total
    assert plan.warmup_steps(0, 32) == 0


# ------------------------------------------------------------------------------------------------- RS2


def rs2_run(n: int, sizes: list[int], seed: int = 0) -> list[torch.Tensor]:
    """The subsets rs2 draws for a run whose selections have ``sizes``, each call given only its round."""
    strategy = build_strategy("rs2")
    subsets = []
    for epoch, k in enumerate(sizes):
        earlier = tuple(len(s) for s in subsets)
        round_ = SelectionRound(seed, epoch, sum(earlier), earlier)
        subsets.append(strategy.select_round(torch.zeros(n), k, torch.Generator().manual_seed(epoch), round_))
    return subsets


# sizes that cross pass ends at many offsets, including a whole-pass subset and a subset ending exactly on a pass end
SIZES = [10, 10, 10, 15, 20, 20, 40, 7, 33, 50, 25, 49, 1, 30, 45, 12, 38]


def test_rs2_trains_every_sample_once_before_any_twice():
    n = 50
    subsets = rs2_run(n, SIZES)
    stream = torch.cat(subsets)
    passes = len(stream) // n
    assert passes >= 7
    for p in range(passes):  # each run of n drawn samples is a permutation: disjoint until N drawn, then once per pass
        assert sorted(stream[p * n:(p + 1) * n].tolist()) == list(range(n)), p
    for s in subsets:  # no subset holds a sample twice, crossing ones included
        assert len(set(s.tolist())) == len(s)
    drawn, crossings = 0, 0
    for k in SIZES:
        crossings += drawn // n != (drawn + k - 1) // n
        drawn += k
    assert crossings >= 5
    # a new permutation each pass, not the same order again
    assert not torch.equal(stream[:n], stream[n:2 * n])


def test_rs2_subset_crossing_a_pass_end_has_no_duplicate():
    # with n = 4, a 3-sample subset after 2 drawn takes the last 2 of pass 0 and 1 of pass 1; for many seeds the next
    # pass's own permutation would start with one of those two, which the crossing must not repeat
    from attent_vision.seeds import STREAM_RS2, generator

    clashes = 0
    for seed in range(40):
        first, crossing, rest = rs2_run(4, [2, 3, 3], seed=seed)
        own_start = torch.randperm(4, generator=generator(seed, STREAM_RS2, 1))[0]
        clashes += own_start in crossing[:2]
        assert len(set(crossing.tolist())) == 3
        assert set(crossing[:2].tolist()) == set(range(4)) - set(first.tolist())
        assert sorted(torch.cat([crossing[2:], rest]).tolist()) == [0, 1, 2, 3]
    assert clashes > 5


def test_rs2_draw_depends_only_on_seed_and_earlier_selections():
    n, k = 30, 12
    fresh = build_strategy("rs2")
    for sizes in ([], [12], [12, 12], [12, 12, 12, 12, 12]):
        round_ = SelectionRound(3, 99, sum(sizes), tuple(sizes))
        alone = fresh.select_round(torch.rand(n), k, torch.Generator().manual_seed(5), round_)
        in_run = rs2_run(n, sizes + [k], seed=3)[-1]
        again = build_strategy("rs2").select_round(torch.zeros(n), k, torch.Generator().manual_seed(6), round_)
        assert torch.equal(alone, in_run) and torch.equal(alone, again)
        assert torch.equal(select(torch.zeros(n), k, "rs2", round=round_), alone)  # the public function too
    other_seed = build_strategy("rs2").select_round(torch.zeros(n), k, torch.Generator(), SelectionRound(4, 0, 0))
    assert not torch.equal(other_seed, rs2_run(n, [k], seed=3)[0])


def test_rs2_weights_are_uniform_and_it_needs_no_scores():
    strategy, round_ = build_strategy("rs2"), SelectionRound(0, 1, 8, (8,))
    chosen, weights = strategy.select_weighted_round(torch.rand(20), 8, torch.Generator(), round_)
    assert torch.equal(chosen, strategy.select_round(torch.rand(20), 8, torch.Generator(), round_))
    assert torch.equal(weights, torch.ones(8, dtype=torch.float64))
    assert not STRATEGIES["rs2"].needs_scores and STRATEGIES["rs2"].cyclic


def test_rs2_refuses_a_round_without_the_earlier_sizes():
    with pytest.raises(ValueError, match="earlier_sizes"):
        build_strategy("rs2").select_round(torch.zeros(10), 3, torch.Generator(), SelectionRound(0, 2, 6))
    with pytest.raises(ValueError, match="drawn_before"):
        SelectionRound(0, 2, 6, (3, 4))


def test_plan_selects_before_every_subset_epoch_for_rs2_only():
    kwargs = {"num_samples": 100, "epochs": 11, "total_cycles": 2, "initial_interval": 3, "max_interval": 3,
              "reselect_every_subset_epoch": False}
    rs2, random = build_plan(strategy="rs2", **kwargs), build_plan(strategy="random", **kwargs)
    subset_epochs = [e.epoch for e in rs2.epochs if e.kind == SUBSET]
    assert subset_epochs == [1, 2, 3, 6, 7, 8]
    assert [e.epoch for e in rs2.selections] == subset_epochs
    assert [e.epoch for e in random.selections] == [1, 6]  # random keeps one draw per cycle
    assert [e.size for e in rs2.epochs] == [e.size for e in random.epochs]


def test_rs2_composes_from_its_config():
    cfg = compose_train(["selection=rs2", "selection.reselect_every_subset_epoch=false"])
    teacher = Teacher.from_settings(num_samples=40, epochs=cfg.trainer.epochs, ratio=cfg.ratio, interval=cfg.interval,
                                    selection=cfg.selection, teaching=cfg.teaching, seed=0)
    assert teacher.strategy.name == "rs2" and teacher.samples_per_scoring == 0
    assert [e.epoch for e in teacher.plan.selections] == [e.epoch for e in teacher.plan.epochs if e.kind == SUBSET]


# ------------------------------------------------------------------------------------------------- paper-time preset


def test_plan_printout_names_the_presets_and_the_work_fraction():
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from attent_vision.config import register_configs

    plan = build_plan(num_samples=1000, epochs=800, strategy="soft", total_cycles=10, initial_interval=5,
                      max_interval=79)
    teacher = Teacher(plan, build_strategy("soft"), seed=0)
    outside = plan_text(teacher, 660)
    assert "ratio 0.200 -> 0.800" in outside and "interval 5 -> 79" in outside and "0.796 of full data" in outside
    register_configs()
    with initialize_config_dir(config_dir=str(TRAIN_CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["interval=paper_time"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # what a running app has
    try:
        inside = plan_text(teacher, 660)
    finally:
        HydraConfig.instance().cfg = None
    assert "ratio=incremental 0.200 -> 0.800" in inside and "interval=paper_time 5 -> 79" in inside
    full = Teacher(build_plan(num_samples=10, epochs=4, strategy="none"), build_strategy("none"), seed=0)
    assert "full data every epoch" in plan_text(full, 4) and "1.000 of full data" in plan_text(full, 4)


def plan_of(cfg, num_samples: int = 10_000):
    return build_plan(num_samples=num_samples, epochs=cfg.trainer.epochs, strategy=cfg.selection.strategy,
                      total_cycles=cfg.teaching.total_cycles, ratio=cfg.ratio.schedule,
                      initial_ratio=cfg.ratio.initial_ratio, final_ratio=cfg.ratio.final_ratio,
                      interval=cfg.interval.schedule, initial_interval=cfg.interval.initial_interval,
                      max_interval=cfg.interval.max_interval,
                      reselect_every_subset_epoch=cfg.selection.reselect_every_subset_epoch)


def test_paper_time_preset_plans_the_papers_time_saving():
    cfg = compose_train(["experiment=paper_imagenet_s50_time"])
    assert (cfg.interval.initial_interval, cfg.interval.max_interval) == (5, 79)
    assert abs(plan_of(cfg).work_fraction - 0.796) < 0.01
    # the paper's own intervals (5 -> 10) cannot show the saving
    assert abs(plan_of(compose_train(["experiment=paper_imagenet_s50"])).work_fraction - 0.959) < 0.01
