"""The downstream frontier benchmark without training: its arithmetic on hand-made results (paired differences,
cost ratios, compute to reach full's quality, the pilot's plateau), its bad-input messages, and its resumability
with a fake runner in place of pretraining."""

import json
import logging

import pytest

from conftest import load_benchmark

fm = load_benchmark("frontier_math")
frontier = load_benchmark("frontier")
T_975_2 = 4.302652729911275  # Student t, 97.5% quantile, 2 degrees of freedom


def result(linear, cost, *, wall=None, knn=0.2, depth=0.7, loss=1.0, eval_s=1.0, probe_s=0.5, scoring=0.0,
           status="completed", history=()):
    """A minimal results dict: ``wall`` is the training wall (total minus validation and probes)."""
    wall = cost / 10 if wall is None else wall
    return {"status": status, "final": {"val_loss": loss, "probe_linear_top1": linear, "probe_knn_top1": knn,
                                        "probe_depth_delta1": depth},
            "time_s": {"total": wall + eval_s + probe_s, "eval": eval_s, "probe": probe_s, "scoring": scoring},
            "compute": {"train_equivalents": cost}, "samples_seen": int(cost), "selections": [],
            "history": list(history)}


def numbers(table):
    """{(seed, budget, method): (linear top-1, compute, extra kwargs)} -> run numbers via the script's extraction."""
    return {key: frontier.run_numbers(result(linear, cost, **extra)) for key, (linear, cost, extra) in table.items()}


def test_training_wall_leaves_out_validation_and_probes():
    assert frontier.training_wall(result(0.3, 100.0, wall=7.5, eval_s=2.5, probe_s=1.0)) == 7.5


THREE_SEEDS = {
    **{(s, 0.5, "full"): (q, 500.0, {}) for s, q in enumerate([0.30, 0.31, 0.29])},
    **{(s, 1.0, "full"): (q, 1000.0, {"knn": k})
       for s, (q, k) in enumerate([(0.40, 0.25), (0.42, 0.26), (0.38, 0.24)])},
    **{(s, 0.5, "random"): (q, 380.0, {}) for s, q in enumerate([0.28, 0.29, 0.27])},
    **{(s, 1.0, "random"): (q, 760.0, {"knn": 0.2}) for s, q in enumerate([0.37, 0.40, 0.37])},
    # soft: costs more than random (scoring) and is better than random by 2, 1 and 2 points.
    **{(s, 0.5, "soft"): (q, 450.0, {}) for s, q in enumerate([0.36, 0.30, 0.33])},
    **{(s, 1.0, "soft"): (q, 900.0, {"knn": 0.2}) for s, q in enumerate([0.39, 0.41, 0.39])},
}


def test_paired_differences_and_cost_ratios_per_seed():
    summary = fm.summarise(numbers(THREE_SEEDS), ["full", "random", "soft"], [0.5, 1.0], [0, 1, 2])
    soft = summary["methods"]["soft"]
    diff = soft["vs_random"]["probe_linear_top1"]
    std = ((2 * (1 / 3) ** 2 + (2 / 3) ** 2) / 2) ** 0.5 / 100  # of the differences 0.02, 0.01, 0.02
    assert diff.mean == pytest.approx(0.05 / 3) and diff.n == 3 and diff.std == pytest.approx(std)
    assert diff.low == pytest.approx(0.05 / 3 - T_975_2 * std / 3 ** 0.5)
    assert soft["vs_full"]["probe_linear_top1"].mean == pytest.approx((-0.01 - 0.01 + 0.01) / 3)
    assert soft["vs_random"]["probe_knn_top1"].mean == pytest.approx(0.0)
    assert soft["compute_vs_full"].mean == pytest.approx(0.9) and soft["compute_vs_full"].std == 0.0
    assert summary["methods"]["random"]["vs_random"]["probe_linear_top1"].mean == 0.0
    assert summary["reference"]["probe_linear_top1"].mean == pytest.approx(0.40)


def test_compute_to_reach_full_within_one_point():
    summary = fm.summarise(numbers(THREE_SEEDS), ["full", "random", "soft"], [0.5, 1.0], [0, 1, 2])
    soft, random = summary["methods"]["soft"]["reach"], summary["methods"]["random"]["reach"]
    # seed 0: target 0.39, soft is at 0.36 at 450 and 0.39 at 900 -> 900 / 1000; seed 1: target 0.41 -> 0.9;
    # seed 2: target 0.37, reached between 450 (0.33) and 900 (0.39): 450 + 450 * 0.04 / 0.06 = 750.
    expected = [0.9, 0.9, 0.75]
    assert [soft["per_seed"][s][0] for s in range(3)] == pytest.approx(expected)
    assert soft["seeds_reached"] == 3 and soft["seeds_within_goal"] == 1 and not soft["upper_bound"]
    assert random["seeds_reached"] == 1 and random["per_seed"][2][0] == pytest.approx(0.76)  # only seed 2
    assert summary["methods"]["full"]["reach"]["per_seed"][0][0] == pytest.approx(
        (500 + 500 * 0.09 / 0.10) / 1000)  # full reaches its own b=1 quality minus a point just before b=1
    table = fm.to_markdown(summary, 3)
    assert "| random | 3 | 0.760 [0.760, 0.760] (n=3) |" in table
    assert "reached 1/3, at <= 0.8 1/3" in table and "reached 3/3, at <= 0.8 1/3" in table
    half = 100 * T_975_2 * ((2 * (1 / 3) ** 2 + (2 / 3) ** 2) / 2) ** 0.5 / 100 / 3 ** 0.5
    assert f"| soft | +1.67 [{5 / 3 - half:+.2f}, {5 / 3 + half:+.2f}] (n=3) |" in table


def test_options_are_judged_against_rs2_at_its_compute_on_their_frontier():
    """At RS2's b=1 compute (760 here), a method's linear top-1 is read off its frontier, linear between its
    budgets; a method whose smallest budget already costs more is not compared (no extrapolation)."""
    table = {**{key: value for key, value in THREE_SEEDS.items() if key[2] != "random"},
             **{(s, b, "random_rs2"): value for (s, b, m), value in THREE_SEEDS.items() if m == "random"},
             **{(s, 0.5, "costly"): (0.5, 800.0, {}) for s in range(3)},
             **{(s, 1.0, "costly"): (0.6, 1600.0, {}) for s in range(3)}}
    summary = fm.summarise(numbers(table), ["full", "random_rs2", "soft", "costly"], [0.5, 1.0], [0, 1, 2])
    soft, costly = summary["methods"]["soft"]["equal_compute"], summary["methods"]["costly"]["equal_compute"]
    # soft at 760: 450 + 310/450 of the way from its b=0.5 to its b=1 point, per seed, minus RS2's b=1 quality
    at = lambda q0, q1: q0 + (q1 - q0) * 310 / 450  # noqa: E731
    expected = [at(0.36, 0.39) - 0.37, at(0.30, 0.41) - 0.40, at(0.33, 0.39) - 0.37]
    assert soft["seeds"] == 3 and soft["outside"] == 0
    assert soft["difference"].mean == pytest.approx(sum(expected) / 3)
    assert costly["seeds"] == 0 and costly["outside"] == 3 and costly["difference"] is None
    assert "(3 costlier at every budget)" in fm.to_markdown(summary, 3)
    assert fm.quality_at(numbers(table), 0, "soft", [0.5, 1.0], 450.0) == pytest.approx(0.36)
    assert fm.quality_at(numbers(table), 0, "soft", [0.5, 1.0], 1000.0) is None


def test_a_method_that_never_gets_there_and_one_already_there_at_its_smallest_budget():
    runs = numbers({(0, 0.5, "full"): (0.30, 500.0, {}), (0, 1.0, "full"): (0.40, 1000.0, {}),
                    (0, 0.5, "early"): (0.45, 300.0, {}), (0, 1.0, "early"): (0.46, 600.0, {}),
                    (0, 0.5, "never"): (0.20, 300.0, {}), (0, 1.0, "never"): (0.30, 600.0, {})})
    summary = fm.summarise(runs, ["full", "early", "never"], [0.5, 1.0], [0])
    early, never = summary["methods"]["early"], summary["methods"]["never"]
    assert early["reach"]["upper_bound"] and early["reach"]["per_seed"][0] == (0.3, True)
    assert never["reach"]["seeds_reached"] == 0 and never["reach"]["cost"] is None
    assert early["vs_random"] == {}  # no random runs in this summary
    table = fm.to_markdown(summary, 1)
    assert "| early | 1 | 0.600 (n=1, no interval) |" in table and "<= 0.300 (n=1, no interval)" in table
    assert "| 30.0 (n=1, no interval) | 20.0 (n=1, no interval) | 70.0 (n=1, no interval) | never |" in table


def test_the_pilot_plateau_is_the_first_epoch_within_one_point_of_the_best_mean():
    curves = {100: [(5, 0.30), (10, 0.36), (15, 0.37), (20, 0.38)],
              101: [(5, 0.30), (10, 0.34), (15, 0.38), (20, 0.37)]}
    epoch, mean = fm.plateau(curves)
    assert [e for e, _ in mean] == [5, 10, 15, 20] and mean[1][1] == pytest.approx(0.35)
    assert epoch == 15  # best mean 0.375 (epochs 15 and 20); 10's 0.35 is more than a point below


def forbidden(*_):
    raise AssertionError("bad input must fail before any run or data generation")


@pytest.mark.parametrize("argv, message", [
    (["--budgets", "0", "1"], "--budgets must be positive"),
    (["--budgets", "0.5", "0.5", "1"], "--budgets has duplicates"),
    (["--budgets", "0.5", "0.75"], "--budgets must include 1.0"),
    (["--seeds", "-1"], "--seeds and --pilot-seeds must be >= 0"),
    (["--pilot-seeds", "3", "3"], "--pilot-seeds has duplicates"),
    (["--reference-epochs", "0"], "--reference-epochs must be >= 1"),
    (["--methods", "full", "magic"], "invalid choice: 'magic' ... 'soft_pass'"),  # the valid ones listed
    (["--regimes", "fast"], "invalid choice: 'fast' ... 'redundant'"),
    (["--methods", "random", "soft_pass"], "'full' is the reference; keep it in --methods"),
    (["--regimes", "clean", "--methods", "full", "random", "--reference-epochs", "20", "--budgets", "0.1", "1"],
     ("budget 0.1 gives 2 epochs in regime clean (20 reference epochs), but method random trains on subsets and "
      "needs teaching.total_cycles + 1 = 6")),
    (["--regimes", "clean", "--reference-epochs", "20", "--budgets", "0.5", "0.51", "1"],
     "budgets 0.5 and 0.51 both give 10 epochs"),
    (["--regimes", "clean", "--", "probe.k=0"], "regime clean, method full: config key probe.k=0 is invalid"),
])
def test_bad_input_fails_with_one_line(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        frontier.main(["--out", str(tmp_path / "out"), *argv], run_one=forbidden, prepare=forbidden)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert all(m in err for m in message.split(" ... ")) and "Traceback" not in err
    assert not (tmp_path / "out" / "clean").exists()


class FakeRunner:
    """Stands in for compose + pretrain_job: probe accuracy that rises with the epochs, compute and wall that grow
    with them; a pilot's history probes every ``probe.every_epochs`` epochs and plateaus at epoch 20."""

    def __init__(self):
        self.calls = {}

    def __call__(self, overrides, run_dir):
        values = dict(o.split("=", 1) for o in overrides)  # the last value of a key wins, as in Hydra
        epochs, method = int(values["trainer.epochs"]), values["experiment_name"].removeprefix("frontier_")
        self.calls[run_dir.name] = overrides
        subset = method != "full"
        every = int(values.get("probe.every_epochs", "null").replace("null", "0"))
        history = [{"epoch": e, "probe_linear_top1": min(e, 20) / 50} for e in range(every, epochs + 1, every or 1)
                   if every]
        r = result(min(epochs, 20) / 50 - (0.01 if subset else 0.0), epochs * (76.0 if subset else 100.0),
                   scoring=0.1 * epochs if subset else 0.0, history=history)
        if "downstream.tasks" in values:
            r["downstream"] = {task: {"status": "completed", "final": {spec.metric: 0.5}}
                               for task, spec in frontier.DOWNSTREAM_TASKS.items()}
        run_dir.mkdir(parents=True)
        (run_dir / "results.json").write_text(json.dumps(r))
        return r


def test_pilots_set_the_reference_and_the_plan_follows(tmp_path):
    runner, prepared = FakeRunner(), []
    argv = ["--regimes", "clean", "--methods", "full", "random_rs2", "--seeds", "0", "--out", str(tmp_path / "b"),
            "trainer.log_every_steps=5"]
    frontier.main(argv, run_one=runner, prepare=prepared.append)
    assert sorted(runner.calls) == ["pilot_seed100", "pilot_seed101", "seed0_b0.5_full", "seed0_b0.5_random_rs2",
                                    "seed0_b1.0_full", "seed0_b1.0_random_rs2"]
    pilot = runner.calls["pilot_seed100"]
    assert "trainer.epochs=60" in pilot and "probe.every_epochs=5" in pilot and "trainer.seed=100" in pilot
    rs2 = runner.calls["seed0_b1.0_random_rs2"]
    assert "trainer.epochs=20" in rs2 and "selection=rs2" in rs2  # b=1 at the plateau
    assert {"probe=standard", "data.cache=memory"} <= set(rs2) and rs2[-1] == "trainer.log_every_steps=5"
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())["regimes"]["clean"]
    assert summary["pilot"]["reference_epochs"] == 20 and summary["regime"]["epochs"] == {"0.5": 10, "1.0": 20}


def test_rerun_reuses_completed_runs_and_reruns_incomplete_ones(tmp_path, capsys, caplog):
    out = tmp_path / "bench"
    argv = ["--regimes", "clean", "--methods", "full", "random", "soft_pass", "--reference-epochs", "20",
            "--seeds", "0", "1", "--finetune", "--out", str(out)]
    runner, prepared = FakeRunner(), []
    frontier.main(argv, run_one=runner, prepare=prepared.append)
    assert len(runner.calls) == 2 * 2 * 3 and len(prepared) == 1  # the data once, before the regime's first run
    assert "downstream.tasks=[imagenet_s50_cls,nyuv2_seg,nyuv2_depth]" in runner.calls["seed0_b1.0_full"]
    assert not any(o.startswith("downstream") for o in runner.calls["seed0_b0.5_full"])
    for name in ("summary.md", "summary.json", "frontier_clean.png", "benchmark.json"):
        assert (out / name).exists(), name
    printed = capsys.readouterr().out
    assert "| full | 2 | 1.000 [1.000, 1.000] (n=2) |" in printed  # costs at b=1 against the same seed's full
    assert "| random | +0.00 [+0.00, +0.00] (n=2) |" in printed  # and qualities against the same seed's random

    runner = FakeRunner()
    with caplog.at_level(logging.INFO, logger="frontier"):
        frontier.main(argv, run_one=runner, prepare=prepared.append)
    assert runner.calls == {} and "reusing" in caplog.text

    running = out / "clean" / "seed1_b1.0_random" / "results.json"
    running.write_text(json.dumps({**json.loads(running.read_text()), "status": "running"}))
    stopped = out / "clean" / "seed0_b1.0_full" / "results.json"  # stopped while fine-tuning
    stopped.write_text(json.dumps({k: v for k, v in json.loads(stopped.read_text()).items() if k != "downstream"}))
    (out / "clean" / "seed0_b0.5_soft_pass" / "results.json").unlink()
    frontier.main(argv, run_one=runner, prepare=prepared.append)
    assert sorted(runner.calls) == ["seed0_b0.5_soft_pass", "seed0_b1.0_full", "seed1_b1.0_random"]


def test_other_arguments_into_the_same_out_fail(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["--regimes", "clean", "--methods", "full", "random", "--reference-epochs", "20", "--out", str(out)]
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
        return result(0.3, 100.0, status="interrupted")

    argv = ["--regimes", "clean", "--methods", "full", "--seeds", "0", "--reference-epochs", "20",
            "--out", str(tmp_path / "b")]
    with pytest.raises(SystemExit, match="seed0_b0.5_full ended interrupted"):
        frontier.main(argv, run_one=interrupted, prepare=lambda _: None)
