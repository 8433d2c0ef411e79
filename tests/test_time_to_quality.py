"""The benchmark's arithmetic (time to reach a loss, ratios against the full-data run of the same seed)."""

import importlib.util
import math

from conftest import REPO

spec = importlib.util.spec_from_file_location("time_to_quality", REPO / "benchmarks" / "time_to_quality.py")
ttq = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ttq)


def result(losses, walls, total, scoring=0.0, seen=100, selections=()):
    history = [{"wall_s": w, "val_loss": l, "step_samples_per_s": 100.0} for w, l in zip(walls, losses)]
    return {"initial": {"val_loss": 10.0}, "history": history, "final": {"val_loss": losses[-1]},
            "time_s": {"total": total, "scoring": scoring}, "samples_seen": seen, "selections": list(selections)}


def test_time_to_reach_interpolates_and_reports_never():
    r = result([6.0, 4.0, 2.0], [1.0, 2.0, 3.0], 3.5)
    assert ttq.time_to_reach(r, 5.0) == 1.5  # halfway between 6.0 at 1 s and 4.0 at 2 s
    assert ttq.time_to_reach(r, 2.0) == 3.0
    assert math.isnan(ttq.time_to_reach(r, 1.0))


def test_summary_is_relative_to_the_same_seeds_full_run():
    runs = {
        (0, "none"): result([6.0, 2.0], [1.0, 4.0], 5.0, seen=100),
        (0, "hard"): result([5.0, 1.5], [1.0, 2.0], 4.0, scoring=1.0, seen=50,
                            selections=[{"scoring_samples_per_s": 200.0}]),
    }
    rows = {r["strategy"]: r for r in ttq.summarise(runs)}
    assert rows["none"]["rel_wall"] == 1.0 and rows["none"]["time_to_full_loss_rel"] == 1.0
    hard = rows["hard"]
    assert hard["rel_wall"] == 0.8 and hard["samples_seen_rel"] == 0.5 and hard["scoring_fraction"] == 0.25
    assert hard["time_to_full_loss_rel"] == (1.0 + (5.0 - 2.0) / (5.0 - 1.5)) / 4.0
    assert hard["scoring_cost_per_sample"] == 0.5
    assert "| hard | 1 | 0.800 |" in ttq.to_markdown(list(rows.values()))
