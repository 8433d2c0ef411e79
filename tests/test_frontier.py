"""The frontier benchmark without training: its arithmetic on hand-made results, its bad-input messages, and its
resumability with a fake runner in place of pretraining."""

import importlib.util
import json
import logging

import pytest
from conftest import REPO


def load(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fm = load("frontier_math")
frontier = load("frontier")


def result(wall, loss, *, eval_s=1.0, scoring=0.0, seen=100, status="completed", selections=()):
    """A minimal results dict: ``wall`` is the training wall (total minus validation)."""
    return {"status": status, "time_s": {"total": wall + eval_s, "eval": eval_s, "scoring": scoring},
            "final": {"val_loss": loss}, "samples_seen": seen, "selections": list(selections)}


def numbers(table):
    """{(seed, budget, method): (wall, loss, extra kwargs)} -> run numbers, through the script's own extraction."""
    return {key: frontier.run_numbers(result(wall, loss, **extra)) for key, (wall, loss, extra) in table.items()}


def test_training_wall_leaves_out_validation():
    assert fm.training_wall(result(7.5, 1.0, eval_s=2.5)) == 7.5


def test_time_to_reference_interpolates_between_budgets():
    assert fm.time_to_reference([(10.0, 3.0), (20.0, 2.0), (30.0, 1.0)], 1.5) == (25.0, False)
    # Not monotone: the first budget at or below the target counts.
    assert fm.time_to_reference([(10.0, 3.0), (20.0, 1.0), (30.0, 2.0)], 1.5) == (17.5, False)


def test_time_to_reference_upper_bound_and_never():
    assert fm.time_to_reference([(10.0, 1.0), (20.0, 0.8)], 1.5) == (10.0, True)
    assert fm.time_to_reference([(10.0, 3.0), (20.0, 2.0)], 1.0) == (None, False)
    assert fm.time_to_reference([], 1.0) == (None, False)


def test_loss_at_wall_interpolates_inside_the_range_only():
    points = [(30.0, 1.0), (10.0, 3.0), (20.0, 2.0)]  # sorted by wall inside
    assert fm.loss_at_wall(points, 15.0) == 2.5
    assert fm.loss_at_wall(points, 20.0) == 2.0
    assert fm.loss_at_wall(points, 30.0) == 1.0
    assert fm.loss_at_wall(points, 5.0) is None
    assert fm.loss_at_wall(points, 35.0) is None
    assert fm.loss_at_wall([(10.0, 1.0)], 12.0) is None


TWO_SEEDS = {
    (0, 0.5, "full"): (50.0, 2.0, {}), (0, 1.0, "full"): (100.0, 1.0, {"seen": 200}),
    (0, 1.5, "full"): (150.0, 0.9, {}),
    (1, 0.5, "full"): (60.0, 2.0, {}), (1, 1.0, "full"): (120.0, 1.2, {"seen": 200}),
    (1, 1.5, "full"): (180.0, 1.1, {}),
    # hard reaches full's loss in seed 0 (between 0.5 and 1.0), never in seed 1.
    (0, 0.5, "hard"): (40.0, 1.5, {}), (0, 1.0, "hard"): (80.0, 0.5, {"scoring": 8.0, "seen": 150}),
    (0, 1.5, "hard"): (120.0, 0.4, {}),
    (1, 0.5, "hard"): (50.0, 1.6, {}), (1, 1.0, "hard"): (100.0, 1.3, {"scoring": 5.0, "seen": 150}),
    (1, 1.5, "hard"): (150.0, 1.25, {}),
}


def test_full_reaches_its_own_loss_at_exactly_its_own_wall():
    summary = fm.summarise(numbers(TWO_SEEDS), ["full"], [0.5, 1.0, 1.5], [0, 1])
    full = summary["methods"]["full"]
    for seed in (0, 1):
        row = full["per_seed"][seed]
        assert row["time_to_reference"] == 1.0 and not row["upper_bound"]
        assert row["wall_vs_full"] == 1.0 and row["samples_seen_vs_full"] == 1.0
        assert row["loss_at_reference_wall"] == TWO_SEEDS[(seed, 1.0, "full")][1]
    assert full["time_to_reference"] == {"mean": 1.0, "std": 0.0, "n": 2, "upper_bound": False}
    assert summary["reference"]["val_loss"]["mean"] == pytest.approx(1.1)


def test_summary_over_seeds_counts_the_seeds_that_reached():
    summary = fm.summarise(numbers(TWO_SEEDS), ["full", "hard"], [1.5, 0.5, 1.0], [0, 1])
    hard = summary["methods"]["hard"]
    assert hard["per_seed"][0]["time_to_reference"] == pytest.approx((40.0 + 40.0 * 0.5 / 1.0) / 100.0)
    assert hard["per_seed"][1]["time_to_reference"] is None
    assert hard["time_to_reference"] == {"mean": pytest.approx(0.6), "std": None, "n": 1, "upper_bound": False}
    assert hard["wall_vs_full"]["mean"] == pytest.approx((0.8 + 100 / 120) / 2)
    assert hard["wall_vs_full"]["std"] == pytest.approx(abs(0.8 - 100 / 120) / 2 ** 0.5)
    assert hard["per_seed"][0]["loss_at_reference_wall"] == pytest.approx(0.45)  # 100 s: between 80 s and 120 s
    assert hard["per_seed"][1]["loss_at_reference_wall"] == pytest.approx(1.3 - 0.05 * 20 / 50)
    assert hard["scoring_share"]["mean"] == pytest.approx((0.1 + 0.05) / 2)
    assert hard["samples_seen_vs_full"] == {"mean": 0.75, "std": 0.0, "n": 2}
    assert [b["budget"] for b in hard["budgets"]] == [0.5, 1.0, 1.5]
    assert hard["budgets"][0]["wall_s"] == {"mean": 45.0, "std": pytest.approx(50 ** 0.5), "n": 2}
    table = fm.to_markdown(summary)
    assert "| hard | 2 | 0.817 ± 0.024 | 0.600 (1/2 seeds) |" in table
    assert "| full | 2 | 1.000 ± 0.000 | 1.000 ± 0.000 |" in table


def test_upper_bound_never_and_reference_only_in_the_table():
    runs = numbers({
        (0, 0.5, "full"): (50.0, 2.0, {}), (0, 1.0, "full"): (100.0, 1.0, {}),
        (0, 0.5, "soft"): (30.0, 0.9, {}), (0, 1.0, "soft"): (60.0, 0.8, {}),  # already there at 0.5
        (0, 0.5, "random"): (40.0, 2.5, {}), (0, 1.0, "random"): (80.0, 1.5, {}),  # never
        (0, 1.0, "soft_pass"): (130.0, 0.95, {"scoring": 26.0}),  # reference budget only
    })
    summary = fm.summarise(runs, ["full", "soft", "random", "soft_pass"], [0.5, 1.0], [0])
    methods = summary["methods"]
    assert methods["soft"]["time_to_reference"] == {"mean": 0.3, "std": None, "n": 1, "upper_bound": True}
    assert methods["random"]["time_to_reference"]["n"] == 0
    assert methods["soft_pass"]["time_to_reference"]["upper_bound"]  # its one point is below L*
    assert len(methods["soft_pass"]["budgets"]) == 1 and methods["soft_pass"]["loss_at_reference_wall"]["n"] == 0
    table = fm.to_markdown(summary)
    assert "| soft | 1 | 0.600 | <= 0.300 |" in table
    assert "| random | 1 | 0.800 | never |" in table
    assert "| soft_pass | 1 | 1.300 | <= 1.300 | - | 0.9500 | 0.200 |" in table


def test_selection_numbers_read_old_and_new_records():
    old = [{"scoring_s": 2.0, "samples_scored": 64}]
    new = [{"scoring_s": 1.0, "samples_scored": 16, "score_age_mean": 2.0, "score_age_max": 5,
            "score_source": "training"}]
    got = fm.selection_numbers(old + new)
    assert got == {"count": 2, "scoring_s": 3.0, "samples_scored": 80, "score_age_mean": 2.0,
                   "score_age_max": 5, "score_source": ["training"]}
    assert fm.selection_numbers(old)["score_age_mean"] is None


def forbidden(*_):
    raise AssertionError("bad input must fail before any run or data generation")


@pytest.mark.parametrize("argv, message", [
    (["--budgets", "0", "1"], "--budgets must be positive"),
    (["--budgets", "0.5", "0.5", "1"], "--budgets has duplicates"),
    (["--budgets", "0.5", "0.75"], "--budgets must include 1.0"),
    (["--seeds", "-1"], "--seeds must be >= 0"),
    (["--seeds", "0", "0"], "--seeds has duplicates"),
    (["--methods", "full", "magic"], "invalid choice: 'magic' ... 'soft_pass'"),  # the valid ones listed
    (["--regimes", "fast"], "invalid choice: 'fast' ... 'many_epochs'"),
    (["--methods", "hard", "soft"], "'full' is the reference; keep it in --methods"),
    (["--regimes", "default", "--methods", "full", "hard", "--budgets", "0.1", "1"],
     ("budget 0.1 gives 3 epochs in regime default (26 reference epochs), but method hard trains on subsets and "
      "needs teaching.total_cycles + 1 = 6")),
    (["--regimes", "default", "--budgets", "0.5", "0.51", "1"], "budgets 0.5 and 0.51 both give 13 epochs"),
])
def test_bad_input_fails_with_one_line(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        frontier.main([*argv, "--out", str(tmp_path / "out")], run_one=forbidden, prepare=forbidden)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert all(m in err for m in message.split(" ... ")) and "Traceback" not in err
    assert not (tmp_path / "out").exists()


class FakeRunner:
    """Stands in for compose + pretrain_job: a loss that falls with the epochs, a wall that grows with them."""

    def __init__(self):
        self.calls = {}

    def __call__(self, overrides, run_dir):
        values = dict(o.split("=", 1) for o in overrides)  # the last value of a key wins, as in Hydra
        epochs, method = int(values["trainer.epochs"]), values["experiment_name"].removeprefix("frontier_")
        self.calls[run_dir.name] = overrides
        subset = method != "full"
        r = result(epochs * (0.7 if subset else 1.0), 3.0 / epochs ** 0.5 * (1.05 if subset else 1.0),
                   scoring=0.1 * epochs if subset else 0.0, seen=100 * epochs // (2 if subset else 1))
        if "downstream.tasks" in values:
            r["downstream"] = {task: {"status": "completed", "final": {spec.metric: 0.5}}
                               for task, spec in frontier.DOWNSTREAM_TASKS.items()}
        run_dir.mkdir(parents=True)
        (run_dir / "results.json").write_text(json.dumps(r))
        return r


def test_plan_order_overrides_and_budget_epochs():
    parser = frontier.build_parser()
    args = parser.parse_args(["trainer.log_every_steps=5"])
    frontier.check_args(parser, args)
    runs, regimes = frontier.plan_runs(args)
    assert len(runs) == 2 * 3 * (4 * 5 + 1)  # regimes x seeds x (budgets x methods + soft_pass at 1.0)
    assert [(r.regime, r.seed, r.budget, r.method) for r in runs[:6]] == [
        ("default", 0, 0.5, "full"), ("default", 0, 0.5, "random"), ("default", 0, 0.5, "prune"),
        ("default", 0, 0.5, "soft_learn"), ("default", 0, 0.5, "hard_learn"), ("default", 0, 0.75, "full")]
    assert regimes["many_epochs"]["epochs"] == {"0.5": 52, "0.75": 78, "1.0": 104, "1.5": 156}
    assert regimes["default"]["scenes"] == 256 and regimes["many_epochs"]["scenes"] == 64
    learn = runs[3].overrides
    assert {"teaching.score=learnability", "selection.reweight=unbiased"} <= set(learn)
    assert "teaching.score_source=training" in learn and "trainer.epochs=13" in learn
    assert learn[-1] == "trainer.log_every_steps=5"  # command-line overrides last


def test_rerun_reuses_completed_runs_and_reruns_incomplete_ones(tmp_path, capsys, caplog):
    out = tmp_path / "bench"
    argv = ["--regimes", "default", "--methods", "full", "hard", "soft_pass", "--budgets", "1", "0.5",
            "--seeds", "0", "1", "--finetune", "--out", str(out)]
    runner, prepared = FakeRunner(), []
    frontier.main(argv, run_one=runner, prepare=prepared.append)
    assert len(runner.calls) == 2 * (2 + 3) and len(prepared) == 1  # the data once, before the regime's first run
    assert "downstream.tasks=[imagenet_s50_cls,nyuv2_seg,nyuv2_depth]" in runner.calls["seed0_b1.0_full"]
    assert not any(o.startswith("downstream") for o in runner.calls["seed0_b0.5_full"])
    for name in ("summary.md", "summary.json", "frontier_default.png", "benchmark.json"):
        assert (out / name).exists(), name
    printed = capsys.readouterr().out
    assert "| full | 2 | 1.000 ± 0.000 | 1.000 ± 0.000 |" in printed and "NYUv2 mIoU" in printed
    assert "| 50.0 ± 0.0 |" in printed

    runner = FakeRunner()
    with caplog.at_level(logging.INFO, logger="frontier"):
        frontier.main(argv, run_one=runner, prepare=prepared.append)
    assert runner.calls == {} and len(prepared) == 1
    assert "reusing" in caplog.text

    running = out / "default" / "seed1_b1.0_hard" / "results.json"
    running.write_text(json.dumps({**json.loads(running.read_text()), "status": "running"}))
    stopped = out / "default" / "seed0_b1.0_full" / "results.json"  # stopped while fine-tuning
    stopped.write_text(json.dumps({k: v for k, v in json.loads(stopped.read_text()).items() if k != "downstream"}))
    (out / "default" / "seed0_b0.5_hard" / "results.json").unlink()
    frontier.main(argv, run_one=runner, prepare=prepared.append)
    assert sorted(runner.calls) == ["seed0_b0.5_hard", "seed0_b1.0_full", "seed1_b1.0_hard"]
    assert len(prepared) == 2


def test_other_arguments_into_the_same_out_fail(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["--regimes", "default", "--methods", "full", "hard", "--budgets", "0.5", "1", "--out", str(out)]
    frontier.main([*argv, "--seeds", "0", "1"], run_one=FakeRunner(), prepare=lambda _: None)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        frontier.main([*argv, "--seeds", "0"], run_one=forbidden, prepare=forbidden)
    err = capsys.readouterr().err
    assert "holds a frontier benchmark with other arguments (seeds: [0, 1] there, [0] now)" in err
    assert "use another --out or the same arguments" in err


def test_a_run_that_does_not_complete_stops_the_benchmark_naming_its_folder(tmp_path):
    def interrupted(overrides, run_dir):
        run_dir.mkdir(parents=True)
        return result(1.0, 1.0, status="interrupted")

    argv = ["--regimes", "default", "--methods", "full", "--seeds", "0", "--out", str(tmp_path / "b")]
    with pytest.raises(SystemExit, match="seed0_b0.5_full ended interrupted"):
        frontier.main(argv, run_one=interrupted, prepare=lambda _: None)
