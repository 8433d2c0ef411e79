"""The frontier benchmark's arithmetic and tables: pure functions of run numbers, so the tests check every number
without training anything.

Quality is downstream: the representation probes of results.json ``final`` (``probe_linear_top1`` first). Cost is
deterministic: ``compute.train_equivalents`` (the run's work in trained samples, FLOP-weighted), with the training
wall time beside it. Every method is compared with the same seed's runs of ``full`` and ``random`` at the reference
budget (b=1): per seed differences, their mean and 95% Student-t interval (attent_vision/report/stats.py).
"""

import statistics

from attent_vision.report.stats import (
    Interval,
    first_reach,
    interval_or_none,
    mean_interval,
    paired_difference,
    paired_ratio,
)
from attent_vision.teaching.selection_record import records_of

QUALITY = ("probe_linear_top1", "probe_knn_top1", "probe_depth_delta1")  # the first is the frontier's
LABELS = {"probe_linear_top1": "linear top-1", "probe_knn_top1": "kNN top-1", "probe_depth_delta1": "depth delta1",
          "val_loss": "val loss"}
WITHIN = 0.01  # "reaches full's quality": within one point of it
COST_GOAL = 0.8  # the question: within one point at <= 0.8 of full's compute
BASELINES = ("random", "random_rs2", "full")  # paired differences against each, where the benchmark ran it
EQUAL_COMPUTE_BASELINE = "random_rs2"  # the strongest random baseline: options are judged against it at its compute


def selection_numbers(selections: list[dict]) -> dict:
    """What a run's selection rounds cost and how old their scores were (``samples_scored`` counts the samples a
    pass or refresh scored). Records written before the score refresh existed lack ``score_age_*`` and
    ``score_source``; those come out as None."""

    records = records_of({"selections": selections})

    def present(key):
        return [getattr(s, key) for s in records if getattr(s, key) is not None]

    ages, oldest = present("score_age_mean"), present("score_age_max")
    rhos = [s.repeatability["spearman"] for s in records if (s.repeatability or {}).get("spearman") is not None]
    return {"count": len(selections), "scoring_s": sum(present("scoring_s")),
            "repeat_spearman": statistics.fmean(rhos) if rhos else None,
            "samples_scored": sum(present("samples_scored")),
            "score_age_mean": statistics.fmean(ages) if ages else None,
            "score_age_max": max(oldest) if oldest else None,
            "score_source": sorted(set(present("score_source"))) or None}


def per_seed(runs: dict, seeds: list[int], budget: float, method: str, key: str) -> dict[int, float]:
    """seed -> ``key`` of the method's run at ``budget`` (seeds without that run are left out)."""
    return {s: runs[(s, budget, method)][key] for s in seeds if (s, budget, method) in runs}


def cost_to_reach(runs: dict, seed: int, method: str, budgets: list[float], target: float
                  ) -> tuple[float | None, bool]:
    """(compute at which the method's frontier first reaches quality ``target``, as a fraction of the same seed's
    full-data compute at b=1; whether that is only an upper bound: reached at its smallest budget already)."""
    points = [(runs[(seed, b, method)]["train_equivalents"], runs[(seed, b, method)][QUALITY[0]])
              for b in budgets if (seed, b, method) in runs]
    cost, upper = first_reach(points, target, higher_is_better=True)
    return (None if cost is None else cost / runs[(seed, 1.0, "full")]["train_equivalents"]), upper


def quality_at(runs: dict, seed: int, method: str, budgets: list[float], compute: float) -> float | None:
    """The method's linear top-1 at ``compute`` (train equivalents) on its frontier, linear between its budgets;
    None outside the computes it was run at (no extrapolation: a method whose smallest budget already costs more
    cannot be compared at that compute)."""
    points = sorted((runs[(seed, b, method)]["train_equivalents"], runs[(seed, b, method)][QUALITY[0]])
                    for b in budgets if (seed, b, method) in runs)
    for (c0, q0), (c1, q1) in zip(points, points[1:]):
        if c0 <= compute <= c1:
            return q0 if c1 == c0 else q0 + (q1 - q0) * (compute - c0) / (c1 - c0)
    return points[0][1] if len(points) == 1 and points[0][0] == compute else None


def at_baseline_compute(runs: dict, method: str, budgets: list[float], seeds: list[int]) -> dict:
    """Per seed, the method's linear top-1 minus the equal-compute baseline's at the baseline's b=1 compute (the
    comparison at equal compute); seeds where the method's frontier does not span that compute are counted apart."""
    base = EQUAL_COMPUTE_BASELINE
    diffs, outside = {}, 0
    for s in seeds:
        if (s, 1.0, base) not in runs or (s, 1.0, method) not in runs:
            continue
        reference = runs[(s, 1.0, base)]
        value = quality_at(runs, s, method, budgets, reference["train_equivalents"])
        if value is None:
            outside += 1
        else:
            diffs[s] = value - reference[QUALITY[0]]
    return {"difference": interval_or_none(mean_interval, diffs.values()) if len(diffs) > 1 else None,
            "seeds": len(diffs), "outside": outside}


def summarise(runs: dict, methods: list[str], budgets: list[float], seeds: list[int]) -> dict:
    """Per method: at b=1 the cost ratios and each quality's mean interval, paired differences against random and
    full; along its budgets, the compute it needs to get within one point of full's quality; per budget the mean
    (cost, quality) points for the plot. ``runs``: (seed, budget, method) -> run numbers (``run_numbers``)."""
    budgets = sorted(budgets)
    full = {s: runs[(s, 1.0, "full")] for s in seeds if (s, 1.0, "full") in runs}
    out = {"methods": {}, "reference": {q: interval_or_none(mean_interval, [r[q] for r in full.values()])
                                        for q in QUALITY}}
    for method in methods:
        entry = {"seeds": sum((s, 1.0, method) in runs for s in seeds)}
        for key, base in (("compute_vs_full", "train_equivalents"), ("wall_vs_full", "wall_s")):
            entry[key] = interval_or_none(paired_ratio, per_seed(runs, seeds, 1.0, method, base),
                                          {s: r[base] for s, r in full.items()})
        entry["quality"] = {q: interval_or_none(mean_interval, per_seed(runs, seeds, 1.0, method, q).values())
                            for q in (*QUALITY, "val_loss")}
        if EQUAL_COMPUTE_BASELINE in methods:
            entry["equal_compute"] = at_baseline_compute(runs, method, budgets, seeds)
        rhos = [r["selections"]["repeat_spearman"] for s in seeds if (r := runs.get((s, 1.0, method)))
                and (r.get("selections") or {}).get("repeat_spearman") is not None]
        entry["repeat_spearman"] = statistics.fmean(rhos) if rhos else None
        for other in BASELINES:
            entry[f"vs_{other}"] = {q: interval_or_none(paired_difference, per_seed(runs, seeds, 1.0, method, q),
                                                        per_seed(runs, seeds, 1.0, other, q))
                                    for q in QUALITY} if other in methods else {}
        reach = {s: cost_to_reach(runs, s, method, budgets, full[s][QUALITY[0]] - WITHIN) for s in full}
        reached = {s: c for s, (c, _) in reach.items() if c is not None}
        entry["reach"] = {"cost": interval_or_none(mean_interval, reached.values()) if reached else None,
                          "seeds_reached": len(reached), "upper_bound": any(u for _, u in reach.values()),
                          "seeds_within_goal": sum(c <= COST_GOAL for c in reached.values()), "per_seed": reach}
        entry["budgets"] = [
            {"budget": b, **{k: statistics.fmean(r[k] for r in rs) for k in ("train_equivalents", "wall_s", *QUALITY)},
             "quality_std": statistics.stdev(r[QUALITY[0]] for r in rs) if len(rs) > 1 else 0.0}
            for b in budgets if (rs := [runs[(s, b, method)] for s in seeds if (s, b, method) in runs])]
        out["methods"][method] = entry
    return out


def cell(interval: Interval | None, scale: float = 1.0, digits: int = 2, signed: bool = False) -> str:
    return "-" if interval is None else interval.format(scale, digits, signed)


def reach_cell(reach: dict, seeds: int) -> str:
    """Mean compute to reach full's quality within one point (vs full's), its interval, and how many seeds did
    (at all, and at <= 0.8 of full's compute); "never" when no seed did."""
    if not reach["seeds_reached"]:
        return "never"
    text = ("<= " if reach["upper_bound"] else "") + cell(reach["cost"], digits=3)
    return f"{text}; reached {reach['seeds_reached']}/{seeds}, at <= {COST_GOAL} {reach['seeds_within_goal']}/{seeds}"


def to_markdown(summary: dict, seeds: int) -> str:
    """One regime's tables: costs and quality at b=1, then the paired differences against random and full."""
    head = ["method", "seeds", "compute vs full (b=1)", "wall vs full (b=1)", "linear top-1 % (b=1)",
            "kNN top-1 % (b=1)", "depth delta1 % (b=1)", "compute to reach full's linear top-1 - 1 point (vs full)",
            "score repeatability (mean Spearman rho, b=1)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, m in summary["methods"].items():
        q, rho = m["quality"], m.get("repeat_spearman")
        lines.append("| " + " | ".join([
            method, str(m["seeds"]), cell(m["compute_vs_full"], digits=3), cell(m["wall_vs_full"], digits=3),
            cell(q["probe_linear_top1"], 100, 1), cell(q["probe_knn_top1"], 100, 1),
            cell(q["probe_depth_delta1"], 100, 1), reach_cell(m["reach"], seeds),
            "-" if rho is None else f"{rho:.2f}"]) + " |")
    others = [o for o in BASELINES if any(m[f"vs_{o}"] for m in summary["methods"].values())]
    diff_head = ["method"] + [f"{LABELS[k]} vs {other} (points)" for other in others for k in QUALITY]
    equal = any("equal_compute" in m for m in summary["methods"].values())
    if equal:
        diff_head.append(f"linear top-1 vs {EQUAL_COMPUTE_BASELINE} at its compute (points; seeds)")
    lines += ["", "| " + " | ".join(diff_head) + " |", "|" + "---|" * len(diff_head)]
    for method, m in summary["methods"].items():
        cells = [cell(m[f"vs_{other}"].get(k), 100, 2, signed=True) for other in others for k in QUALITY]
        if equal:
            e = m["equal_compute"]
            cells.append(f"{cell(e['difference'], 100, 2, signed=True)}; {e['seeds']}"
                         + (f" ({e['outside']} costlier at every budget)" if e["outside"] else ""))
        lines.append("| " + " | ".join([method, *cells]) + " |")
    return "\n".join(lines) + "\n"


def plateau(curves: dict[int, list[tuple[int, float]]], within: float = WITHIN) -> tuple[int, list]:
    """The pilot's answer: ``curves`` (seed -> [(epoch, quality)] of full-data runs probed every few epochs) ->
    (the first probed epoch whose quality, averaged over the seeds, is within ``within`` of the best average, the
    averaged curve [(epoch, mean quality)])."""
    epochs = sorted(set.intersection(*(set(e for e, _ in c) for c in curves.values())))
    mean = [(e, statistics.fmean(dict(c)[e] for c in curves.values())) for e in epochs]
    best = max(q for _, q in mean)
    return next(e for e, q in mean if q >= best - within), mean
