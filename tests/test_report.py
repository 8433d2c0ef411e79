"""The Table-3 report on a real multirun folder (the smoke Table-3 sweep): table, CSV and plots, with numbers
that match the runs' results.json files."""

import csv
import json
import math

import pytest

from attent_vision.config.downstream_tasks import DOWNSTREAM_TASKS
from attent_vision.report import TABLE3_ORDER, aggregate, build_report, main, run_row
from attent_vision.report.selection_plot import chosen_and_percentile, selection_arrays

from conftest import run_cli


@pytest.fixture(scope="module")
def report(table3_sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return build_report([table3_sweep], out), out, table3_sweep


def test_report_has_every_row_in_table3_order(report):
    built, out, _ = report
    rows = built["rows"]
    assert [(r["ratio"], r["interval"], r["selection"]) for r in rows] == TABLE3_ORDER
    markdown = (out / "report.md").read_text().splitlines()
    assert markdown[0].startswith("| experiment | ratio | interval | selection | seeds | wall s | vs full |")
    assert len(markdown) == 2 + 10 and markdown[2].startswith("| t3_full | - | - | none | 1 |")
    assert [line.split(" | ")[0] for line in markdown[2:]] == [
        "| t3_" + ("full" if s == "none" else f"{r}_{i}_{s}") for r, i, s in TABLE3_ORDER]
    for name in ("report.md", "report.csv", "val_loss_vs_wall_time.png", "val_loss_vs_samples_seen.png",
                 "throughput.png", "score_histograms.png", "chosen_vs_score.png"):
        assert (out / name).stat().st_size > 0


def test_hard_selection_chooses_the_high_scores_and_random_has_none(report):
    """selections.npz of the real sweep: top-k keeps choosing the samples of the highest score percentiles."""
    built, _, _ = report
    by_setting = {(r["ratio"], r["interval"], r["selection"]): r for r in built["rows"]}
    hard = selection_arrays(by_setting[("cosine", "fixed", "hard")]["runs"][0]["result"])
    chosen, percentile = chosen_and_percentile(hard)
    assert percentile[chosen == chosen.max()].mean() > 0.6 > percentile[chosen == 0].mean()
    random = selection_arrays(by_setting[("cosine", "incremental", "random")]["runs"][0]["result"])
    assert not any(name.startswith("scores_") for name in random) and random["selection_epochs"].size > 0


def test_report_numbers_match_the_results_files(report):
    built, out, sweep = report
    by_setting = {(r["ratio"], r["interval"], r["selection"]): r for r in built["rows"]}
    full_wall = None
    for path in sweep.glob("*/results.json"):
        result = json.loads(path.read_text())
        key = ("-", "-", "none") if result["setting"]["selection"] == "none" else (
            result["setting"]["ratio"], result["setting"]["interval"], result["setting"]["selection"])
        row = by_setting[key]
        assert row["wall_s"] == result["time_s"]["total"] and row["scoring_s"] == result["time_s"]["scoring"]
        assert row["samples_seen"] == result["samples_seen"] and row["optimizer_steps"] == result["optimizer_steps"]
        assert row["val_loss"] == result["final"]["val_loss"]
        if key[2] == "none":
            full_wall = result["time_s"]["total"]
    assert all(r["rel_wall"] == pytest.approx(r["wall_s"] / full_wall) for r in built["rows"])
    with open(out / "report.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert [float(r["samples_seen"]) for r in csv_rows] == [r["samples_seen"] for r in built["rows"]]


def test_seeds_are_averaged_with_their_spread(report):
    _, _, sweep = report
    result = json.loads(next(sweep.glob("*/results.json")).read_text())
    rows = []
    for seed, loss in ((0, 1.0), (1, 2.0), (2, 3.0)):
        r = json.loads(json.dumps(result))
        r["setting"]["seed"], r["final"]["val_loss"] = seed, loss
        r["downstream"] = {"nyuv2_depth": {"final": {"val_delta1": 0.5 + 0.1 * seed}}}
        rows.append(run_row(r))
    (row,) = aggregate(rows)
    assert (row["seeds"] == 3 and row["reruns"] == 0 and row["val_loss"] == 2.0
            and row["val_loss_std"] == pytest.approx(1.0))
    column = DOWNSTREAM_TASKS["nyuv2_depth"].column
    assert row[column] == pytest.approx(60.0) and row[f"{column}_std"] == pytest.approx(10.0)
    assert math.isnan(row[DOWNSTREAM_TASKS["nyuv2_seg"].column])


def test_report_command_line(table3_sweep, tmp_path, capsys):
    main([str(table3_sweep), "--out", str(tmp_path)])
    assert "| incremental | incremental | soft |" in capsys.readouterr().out
    failed = run_cli(["-m", "attent_vision.report", str(tmp_path / "empty")])
    assert failed.returncode != 0 and "no results.json" in failed.stderr


def test_runs_that_did_not_complete_are_listed_not_averaged(table3_sweep, tmp_path):
    """A copy of the sweep where one job diverged, one was interrupted, one still says running and one crashed
    before writing results.json: the table keeps only completed runs, the rest are listed with why."""
    import shutil

    sweep = tmp_path / "sweep"
    shutil.copytree(table3_sweep, sweep)
    jobs = sorted(p.parent for p in sweep.glob("*/results.json"))
    edits = {jobs[1]: {"status": "diverged", "diverged": {"step": 4, "what": "loss"}, "exit_code": 3},
             jobs[2]: {"status": "interrupted", "exit_code": 143}, jobs[3]: {"status": "running"}}
    for job, edit in edits.items():
        result = json.loads((job / "results.json").read_text())
        (job / "results.json").write_text(json.dumps({**result, **edit}))
    (jobs[4] / "results.json").unlink()  # its .hydra/ stays: a job that crashed before writing
    built = build_report([sweep], tmp_path / "out")
    assert len(built["rows"]) == 10 - 4 and all(r["status"] == "completed" for r in built["rows"])
    assert [r["status"] for r in built["left_out"]] == ["diverged", "interrupted", "running"]
    assert built["crashed"] == [jobs[4]]
    text = (tmp_path / "out" / "report.md").read_text()
    assert "4 run(s) did not complete" in text and "non-finite loss at step 4" in text and "exit 143" in text
