"""The frontier benchmark's arithmetic and its table: pure functions of results dicts and (wall, loss) points, so
that the tests check every number without training anything.

A method's frontier is its (wall, loss) points across epoch budgets. Each seed is compared with the same seed's
full-data run at budget 1.0, the reference: its final validation loss L* and its wall time T*.
"""

import statistics
from itertools import pairwise


def training_wall(result: dict) -> float:
    """Wall seconds of a run without its validation: validation measures the model, it does not train it, so a run
    is not charged for it (time_s["eval"] also holds the initial and final evaluations)."""
    t = result["time_s"]
    return t["total"] - t["eval"]


def selection_numbers(selections: list[dict]) -> dict:
    """What a run's selection rounds cost and how old their scores were (``samples_scored`` counts the samples a
    pass or refresh scored). Records written before the score refresh existed lack ``score_age_*`` and
    ``score_source``; those come out as None."""

    def present(key):
        return [s[key] for s in selections if s.get(key) is not None]

    ages, oldest = present("score_age_mean"), present("score_age_max")
    return {"count": len(selections), "scoring_s": sum(present("scoring_s")),
            "samples_scored": sum(present("samples_scored")),
            "score_age_mean": statistics.fmean(ages) if ages else None,
            "score_age_max": max(oldest) if oldest else None,
            "score_source": sorted(set(present("score_source"))) or None}


def time_to_reference(points: list[tuple[float, float]], target: float) -> tuple[float | None, bool]:
    """The wall time at which a frontier first reaches loss <= ``target``, and whether that is only an upper bound.

    ``points``: (wall, loss) in budget order. The frontier is piecewise linear through them: at the first point
    at or below the target, interpolate between it and the previous point. When the smallest budget is already
    there, a smaller one might have been too, so its wall is an upper bound (flag True). (None, False) when no
    budget reaches the target ("never")."""
    for i, (wall, loss) in enumerate(points):
        if loss > target:
            continue
        if loss == target or i == 0:  # exact: w0 + (w1 - w0) * 1.0 need not round back to w1
            return wall, i == 0
        w0, l0 = points[i - 1]  # l0 > target >= loss, so the division is safe
        return w0 + (wall - w0) * (l0 - target) / (l0 - loss), False
    return None, False


def loss_at_wall(points: list[tuple[float, float]], wall: float) -> float | None:
    """The frontier's loss at ``wall``, interpolated linearly between its points ordered by wall; None outside the
    points' wall range (no extrapolation)."""
    points = sorted(points)
    for (w0, l0), (w1, l1) in pairwise(points):
        if w0 == wall:
            return l0
        if w0 < wall < w1:
            return l0 + (l1 - l0) * (wall - w0) / (w1 - w0)
    if points and points[-1][0] == wall:
        return points[-1][1]
    return None


def stat(values: list[float | None]) -> dict:
    """Mean, sample standard deviation (None with fewer than two values) and count of the values that exist."""
    present = [v for v in values if v is not None]
    return {"mean": statistics.fmean(present) if present else None,
            "std": statistics.stdev(present) if len(present) > 1 else None, "n": len(present)}


def seed_numbers(runs: dict, seed: int, method: str, budgets: list[float]) -> dict:
    """One method's numbers for one seed, relative to that seed's full-data run at budget 1.0.

    ``runs``: (seed, budget, method) -> run numbers (``wall_s``, ``val_loss``, ``samples_seen``, ``scoring_s``,
    ``downstream``); budgets a method did not run at are absent."""
    ref = runs[(seed, 1.0, "full")]
    mine = [runs[(seed, b, method)] for b in budgets if (seed, b, method) in runs]
    points = [(r["wall_s"], r["val_loss"]) for r in mine]
    reached, upper = time_to_reference(points, ref["val_loss"])
    at_ref = runs[(seed, 1.0, method)]
    return {
        "time_to_reference": None if reached is None else reached / ref["wall_s"],
        "upper_bound": upper,
        "loss_at_reference_wall": loss_at_wall(points, ref["wall_s"]),
        "wall_vs_full": at_ref["wall_s"] / ref["wall_s"],
        "val_loss": at_ref["val_loss"],
        "scoring_share": at_ref["scoring_s"] / at_ref["wall_s"],
        "samples_seen_vs_full": at_ref["samples_seen"] / ref["samples_seen"],
        "downstream": dict(at_ref.get("downstream") or {}),
    }


def summarise(runs: dict, methods: list[str], budgets: list[float], seeds: list[int]) -> dict:
    """Per method: the per-seed numbers, their mean ± std over seeds (``n`` = seeds that have the number, e.g.
    that reached full's loss), and per budget the mean ± std of (wall, loss) for the plot; plus full's reference
    loss and wall."""
    budgets = sorted(budgets)
    out = {"reference": {"val_loss": stat([runs[(s, 1.0, "full")]["val_loss"] for s in seeds]),
                         "wall_s": stat([runs[(s, 1.0, "full")]["wall_s"] for s in seeds])},
           "methods": {}}
    for method in methods:
        per_seed = {seed: seed_numbers(runs, seed, method, budgets) for seed in seeds}
        rows = list(per_seed.values())
        entry = {"seeds": len(seeds), "per_seed": per_seed}
        for key in ("time_to_reference", "loss_at_reference_wall", "wall_vs_full", "val_loss", "scoring_share",
                    "samples_seen_vs_full"):
            entry[key] = stat([r[key] for r in rows])
        # An upper bound in any seed makes the mean one too (that seed's true value is at most its number).
        entry["time_to_reference"]["upper_bound"] = any(r["upper_bound"] for r in rows)
        columns = sorted({c for r in rows for c in r["downstream"]})
        entry["downstream"] = {c: stat([r["downstream"].get(c) for r in rows]) for c in columns}
        entry["budgets"] = [
            {"budget": b, "wall_s": stat([runs[(s, b, method)]["wall_s"] for s in seeds]),
             "val_loss": stat([runs[(s, b, method)]["val_loss"] for s in seeds])}
            for b in budgets if all((s, b, method) in runs for s in seeds)]
        out["methods"][method] = entry
    return out


COLUMNS = [  # (header, key in a method's summary, digits)
    ("wall vs full (b=1)", "wall_vs_full", 3),
    ("time to full's loss (vs full's wall)", "time_to_reference", 3),
    ("val loss at full's wall", "loss_at_reference_wall", 4),
    ("final val loss (b=1)", "val_loss", 4),
    ("scoring share of wall (b=1)", "scoring_share", 3),
    ("samples seen vs full (b=1)", "samples_seen_vs_full", 3),
]


def cell(s: dict, digits: int, seeds: int, missing: str = "-") -> str:
    """mean ± std of a ``stat``; "<= " for an upper bound, "(k/n seeds)" when not every seed has the number."""
    if not s["n"]:
        return missing
    text = f"{s['mean']:.{digits}f}" + (f" ± {s['std']:.{digits}f}" if s["std"] is not None else "")
    if s.get("upper_bound"):
        text = "<= " + text
    return text + (f" ({s['n']}/{seeds} seeds)" if s["n"] < seeds else "")


def to_markdown(summary: dict, downstream_columns: list[str] = ()) -> str:
    """One regime's table: a row per method, then one column per downstream metric asked for (in percent)."""
    columns = list(downstream_columns)
    lines = ["| method | seeds | " + " | ".join([h for h, _, _ in COLUMNS] + columns) + " |",
             "|" + "---|" * (2 + len(COLUMNS) + len(columns))]
    for method, m in summary["methods"].items():
        cells = [method, str(m["seeds"])]
        cells += [cell(m[k], d, m["seeds"], "never" if k == "time_to_reference" else "-") for _, k, d in COLUMNS]
        cells += [cell(m["downstream"].get(c, {"n": 0}), 1, m["seeds"]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
