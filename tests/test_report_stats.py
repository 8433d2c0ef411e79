"""The report's statistics (paired differences over seeds with 95% intervals, bootstrap, time to reach a quality) and
the paper's Table 3 beside ours, on hand-made numbers checked against values computed by hand. Fast: no training."""

import csv
import math

import numpy as np
import pytest
from omegaconf import OmegaConf

from attent_vision.engine.results import COMPLETED, RunResults, write_json_atomic
from attent_vision.report import build_report, main
from attent_vision.report.paper_table3 import PAPER_TABLE3, paper_deltas, paper_time_vs_full
from attent_vision.report.stats import (
    Interval,
    bootstrap_interval,
    first_reach,
    mean_interval,
    paired_difference,
    paired_ratio,
    time_to_reach,
)

T975_2 = 4.302652729911275  # Student's t, 0.975 quantile, 2 degrees of freedom
T975_1 = 12.706204736174707  # ... 1 degree of freedom


# --- paired differences and intervals ---------------------------------------------------------------------------

def test_paired_difference_against_hand_computed_values():
    a, b = {0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.5, 1: 1.0, 2: 2.5}
    d = paired_difference(a, b)  # differences 0.5, 1.0, 0.5
    mean, std = 2 / 3, math.sqrt(1 / 12)  # std: sqrt(((1/6)^2 + (1/3)^2 + (1/6)^2) / 2)
    half = T975_2 * std / math.sqrt(3)
    assert (d.n, d.seeds) == (3, (0, 1, 2))
    assert d.mean == pytest.approx(mean) and d.std == pytest.approx(std)
    assert d.low == pytest.approx(mean - half) and d.high == pytest.approx(mean + half)
    assert not d.excludes_zero  # low = 0.667 - 0.717 < 0
    assert d.format() == "+0.67 [-0.05, +1.38] (n=3)"


def test_pairing_ignores_seeds_only_one_side_has_and_values_that_are_not_finite():
    a = {0: 1.0, 1: 2.0, 2: 3.0, 5: 9.0, 6: math.nan}
    b = {0: 0.5, 1: 1.0, 2: 2.5, 6: 1.0, 7: 4.0, 8: None}
    assert paired_difference(a, b) == paired_difference({0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.5, 1: 1.0, 2: 2.5})


def test_one_common_seed_has_no_interval_and_none_raises_naming_the_seeds():
    one = paired_difference({0: 2.0, 1: 5.0}, {0: 1.5})
    assert (one.n, one.mean, one.low, one.high) == (1, 0.5, None, None) and math.isnan(one.std)
    assert not one.excludes_zero and one.format() == "+0.50 (n=1, no interval)"
    with pytest.raises(ValueError, match=r"no seed has a usable value in both soft and full: soft has \[0, 1\]"):
        paired_difference({0: 1.0, 1: 2.0}, {2: 1.0}, names=("soft", "full"))
    with pytest.raises(ValueError, match="no seed"):
        paired_difference({}, {})


def test_mean_interval_paired_ratio_and_format():
    m = mean_interval([1.0, 2.0, 3.0, math.nan, None])
    assert (m.n, m.mean, m.std) == (3, 2.0, 1.0)
    assert (m.low, m.high) == pytest.approx((2 - T975_2 / math.sqrt(3), 2 + T975_2 / math.sqrt(3)))
    assert not m.excludes_zero and m.format(digits=1, signed=False) == "2.0 [-0.5, 4.5] (n=3)"
    with pytest.raises(ValueError):
        mean_interval([math.nan])
    r = paired_ratio({0: 80.0, 1: 75.0, 2: 70.0, 3: 1.0}, {0: 100.0, 1: 100.0, 2: 100.0, 3: 0.0})  # 3: divides by 0
    assert (r.n, r.mean, r.std) == (3, pytest.approx(0.75), pytest.approx(0.05))
    shown = Interval(0.01234, 0.01, 6, 0.00456, 0.02012)
    assert shown.format(scale=100) == "+1.23 [+0.46, +2.01] (n=6)" and shown.excludes_zero


def test_bootstrap_interval_contains_the_mean_and_is_seeded():
    diffs = [0.5, 1.0, 0.5, 0.8, 1.2, 0.3]
    first = bootstrap_interval(diffs, np.random.default_rng(0), n_boot=2000)
    assert first.mean == pytest.approx(np.mean(diffs)) and first.n == 6
    assert first.low < first.mean < first.high
    assert bootstrap_interval(diffs, np.random.default_rng(0), n_boot=2000) == first
    assert bootstrap_interval(diffs, 0, n_boot=2000) == first  # a seed stands for its generator
    assert bootstrap_interval(diffs, 1, n_boot=2000) != first
    assert first.excludes_zero
    # The percentile bootstrap of a mean is close to the normal interval mean +- 1.96 sd / sqrt(n) (a little
    # narrower: it uses the plug-in sd, with n in the denominator): its half-width is within 15% of that.
    normal_half = 1.96 * np.std(diffs) / np.sqrt(len(diffs))
    assert (first.high - first.low) / 2 == pytest.approx(normal_half, rel=0.15)
    assert bootstrap_interval([0.4], 0).low is None
    with pytest.raises(ValueError):
        bootstrap_interval([], 0)


# --- time to reach a quality --------------------------------------------------------------------------------------

def test_time_to_reach_higher_is_better():
    points = [(1.0, 0.5), (2.0, 0.7), (4.0, 0.9)]
    assert time_to_reach(points, 0.8) == pytest.approx(3.0)  # halfway from (2, 0.7) to (4, 0.9)
    assert first_reach(points, 0.8) == (pytest.approx(3.0), False)
    assert first_reach(points, 0.7) == (2.0, False)  # exactly at a point
    assert first_reach(points, 0.4) == (1.0, True)  # already at the first point: only an upper bound
    assert time_to_reach(points, 0.95) is None and first_reach(points, 0.95) == (None, False)
    assert time_to_reach([(1.0, math.nan), (2.0, 0.6), (3.0, 0.8)], 0.7) == pytest.approx(2.5)


def test_time_to_reach_lower_is_better():
    losses = [(1.0, 3.0), (2.0, 2.0), (4.0, 1.0)]
    assert time_to_reach(losses, 1.5, higher_is_better=False) == pytest.approx(3.0)
    assert first_reach(losses, 3.5, higher_is_better=False) == (1.0, True)
    assert time_to_reach(losses, 0.5, higher_is_better=False) is None
    assert time_to_reach(losses, 1.5) == 1.0  # read as higher-is-better, 3.0 >= 1.5 at once


# --- the paper's Table 3 beside ours --------------------------------------------------------------------------------

FULL = dict(selection="none", ratio="-", interval="-")
SOFT = dict(selection="soft", ratio="incremental", interval="incremental")
# Per seed: (training wall s, compute in train equivalents, kNN top1, linear top1, depth delta1). Seed 3 has no
# full-data run, the linear probe of seed 2 is missing: neither enters a paired difference.
FULL_RUNS = {0: (100.0, 1.0, 0.50, 0.40, 0.60), 1: (100.0, 1.0, 0.52, 0.42, 0.61), 2: (100.0, 1.0, 0.54, None, 0.62)}
SOFT_RUNS = {0: (80.0, 0.62, 0.53, 0.45, 0.61), 1: (75.0, 0.60, 0.54, 0.43, 0.61), 2: (70.0, 0.58, 0.58, 0.47, 0.64),
             3: (60.0, 0.50, 0.99, 0.99, 0.99)}


def write_run(folder, setting, seed, numbers, experiment):
    """A completed pretraining run folder as the trainer writes it: results.json (with probes and compute) and the
    resolved config.yaml holding trainer.seed."""
    wall, compute, knn, linear, depth = numbers
    folder.mkdir(parents=True)
    final = {"val_loss": 1.0, "probe_knn_top1": knn, "probe_depth_delta1": depth}
    if linear is not None:
        final["probe_linear_top1"] = linear
    results = RunResults(
        stage="pretrain", status=COMPLETED, experiment=experiment, run_dir=str(folder),
        setting={**setting, "model": "multimae_pico", "data": "synthetic", "seed": seed},
        initial={"val_loss": 3.0}, final=final, epochs=3, epochs_completed=3, optimizer_steps=18,
        planned_optimizer_steps=18, samples_seen=288, bad_samples=0, bad_examples=[],
        time_s={"train": wall - 5.0, "data_wait": 0.1, "scoring": 4.9, "eval": 10.0, "probe": 2.0, "checkpoint": 0.0,
                "other": 0.0, "total": wall + 12.0},
        history=[{"epoch": 1, "kind": "full", "samples": 96, "global_step": 6, "samples_seen": 96, "wall_s": 2.0,
                  "step_samples_per_s": 50.0, "val_loss": 1.0}],
        details={"samples_scored": 0, "selections": [], "compute": {"train_equivalents": compute, "total_flops": 1e12}})
    write_json_atomic(results.to_dict(), folder / "results.json")
    OmegaConf.save(OmegaConf.create({"trainer": {"seed": seed}}), folder / "config.yaml")


def write_sweep(root, rows):
    for experiment, (setting, runs) in rows.items():
        for seed, numbers in runs.items():
            write_run(root / f"{experiment}_{seed}", setting, seed, numbers, experiment)
    return root


def test_paper_rows_as_data():
    key = ("incremental", "incremental", "soft")
    assert len(PAPER_TABLE3) == 10 and PAPER_TABLE3[key].minutes == 980
    assert f"{paper_time_vs_full(key):.3f}" == "0.794"
    assert paper_deltas(key) == {"imagenet_s50_cls": 0.1, "nyuv2_seg": 0.7, "nyuv2_depth": 5.1}
    assert paper_deltas(("cosine", "incremental", "random")) == {"imagenet_s50_cls": -3.6, "nyuv2_seg": -6.6,
                                                                  "nyuv2_depth": -2.5}


def test_table3_beside_ours_with_paired_intervals_over_seeds(tmp_path, capsys):
    sweep = write_sweep(tmp_path / "sweep", {"t3_full": (FULL, FULL_RUNS), "t3_soft": (SOFT, SOFT_RUNS)})
    out = tmp_path / "out"
    built = build_report([sweep], out)
    names = [p.name for p in built["files"]]
    assert names[:4] == ["report.md", "report.csv", "table3_vs_paper.md", "table3_vs_paper.csv"]

    lines = (out / "table3_vs_paper.md").read_text().splitlines()
    header = [h.strip() for h in lines[4].strip("|").split("|")]
    (row,) = [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[6:7]]
    assert (row["ratio"], row["interval"], row["selection"], row["experiment"]) == (
        "incremental", "incremental", "soft", "t3_soft")
    assert (row["paper: time"], row["paper: vs full"]) == ("980m", "0.794")
    assert (row["paper: Δ ImageNetS50 top1"], row["paper: Δ NYUv2 mIoU"], row["paper: Δ NYUv2 delta1"]) == (
        "+0.1", "+0.7", "+5.1")
    # Wall (total - eval - probe) per seed: 80/100, 75/100, 70/100 -> 0.75, std 0.05; compute 0.62, 0.60, 0.58.
    h = T975_2 / math.sqrt(3)
    assert row["ours: wall vs full"] == f"0.750 [{0.75 - h * 0.05:.3f}, {0.75 + h * 0.05:.3f}] (n=3)"
    assert row["ours: compute vs full"] == f"0.600 [{0.6 - h * 0.02:.3f}, {0.6 + h * 0.02:.3f}] (n=3)"
    # kNN: differences 3, 2, 4 points (mean 3, std 1); depth: 1, 0, 2 (mean 1, std 1); linear: seeds 0 and 1 only,
    # differences 5 and 1 points (mean 3, std 2 sqrt 2, t with one degree of freedom).
    knn = row["ours: Δ probe kNN top1 (pp)"]
    assert knn == f"+3.00 [{3 - h:+.2f}, {3 + h:+.2f}] (n=3)" == "+3.00 [+0.52, +5.48] (n=3)"
    assert row["ours: Δ probe depth delta1 (pp)"] == "+1.00 [-1.48, +3.48] (n=3)"
    half = T975_1 * 2 * math.sqrt(2) / math.sqrt(2)
    assert row["ours: Δ probe linear top1 (pp)"] == f"+3.00 [{3 - half:+.2f}, {3 + half:+.2f}] (n=2)"
    assert not any(h.startswith("ours: Δ ImageNetS50") for h in header)  # no fine-tuning in these runs
    assert "Full data (the reference): paper 1234m" in lines[2] and "seeds 0 1 2" in lines[2]

    with open(out / "table3_vs_paper.csv") as f:
        (record,) = csv.DictReader(f)
    assert float(record["paper_time_vs_full"]) == pytest.approx(980 / 1234)
    assert float(record["paper_delta_nyuv2_depth"]) == 5.1
    assert float(record["ours_delta_pp_probe_knn_top1_mean"]) == pytest.approx(3.0)
    assert float(record["ours_delta_pp_probe_knn_top1_low"]) == pytest.approx(3 - h)
    assert record["ours_delta_pp_probe_knn_top1_seeds"] == "0 1 2" and record["ours_wall_vs_full_n"] == "3"

    main([str(sweep), "--out", str(tmp_path / "printed")])
    printed = capsys.readouterr().out
    assert "## The paper's Table 3 beside ours" in printed and "+3.00 [+0.52, +5.48] (n=3)" in printed
    assert "table3_vs_paper.csv" in printed  # in the "wrote ..." line


def test_main_table_shows_probes_and_compute_vs_full(tmp_path):
    sweep = write_sweep(tmp_path / "sweep", {"t3_full": (FULL, FULL_RUNS), "t3_soft": (SOFT, SOFT_RUNS)})
    built = build_report([sweep], tmp_path / "out")
    full, soft = built["rows"]
    assert full["probe_knn_top1"] == pytest.approx(52.0) and full["probe_knn_top1_std"] == pytest.approx(2.0)
    assert soft["rel_compute"] == pytest.approx(0.575 / 1.0)  # mean over its four seeds, vs full's mean
    lines = (tmp_path / "out" / "report.md").read_text().splitlines()
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    assert header[header.index("vs full") + 1] == "compute vs full"
    assert {"probe kNN top1 %", "probe linear top1 %", "probe depth delta1 %"} <= set(header)
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[header.index("probe kNN top1 %")] == "52.0 ± 2.0"
    with open(tmp_path / "out" / "report.csv") as f:
        assert float(next(csv.DictReader(f))["probe_depth_delta1"]) == pytest.approx(61.0)


def test_no_table3_without_the_full_data_row_or_another_table3_row(tmp_path):
    hard = dict(selection="hard", ratio="cosine", interval="incremental")
    sweep = write_sweep(tmp_path / "a", {"t3_soft": (SOFT, SOFT_RUNS), "t3_hard": (hard, SOFT_RUNS)})
    built = build_report([sweep], tmp_path / "out_a")
    assert built["table3_text"] == "" and not list((tmp_path / "out_a").glob("table3_vs_paper*"))
    other = dict(selection="prune", ratio="incremental", interval="incremental")  # not a row of Table 3
    sweep = write_sweep(tmp_path / "b", {"t3_full": (FULL, FULL_RUNS), "pruned": (other, SOFT_RUNS)})
    build_report([sweep], tmp_path / "out_b")
    assert not list((tmp_path / "out_b").glob("table3_vs_paper*"))
