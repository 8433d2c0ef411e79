"""The paper's Table 3 beside ours: for each of its rows that the runs have, the paper's time and downstream
deltas against full data, and ours as per-seed paired comparisons with 95% intervals.

The paper ran each setting once, so its numbers are differences of single runs. Ours pair every run with the
full-data run of the same seed (``trainer.seed``; a seed's reruns are averaged first) and report the mean over the
seeds both rows have with its Student-t interval (``stats``): time as the ratio to full data (wall time without
validation and probes, and compute, results.json ``compute.train_equivalents``, when the runs record it), quality as
differences in percentage points of every metric the runs have: the representation probes (``final.probe_*``) and
the fine-tuned downstream metrics (``downstream``), each beside the paper's delta of the same task.

Written as table3_vs_paper.md and .csv when the runs hold the full-data row and at least one other Table-3 row.
"""

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config.downstream_tasks import DOWNSTREAM_TASKS
from .stats import Interval, interval_or_none, mean_interval, paired_difference, paired_ratio
from .tables import PROBE_COLUMNS, downstream_metric, final_metric, train_equivalents, training_wall

FULL = ("-", "-", "none")
FILES = {  # what attent-report --help says of them
    "table3_vs_paper.md": "the paper's Table 3 beside ours, deltas vs full data with 95% intervals over paired "
                          "seeds (with a full-data row and another Table-3 row)",
    "table3_vs_paper.csv": "that table with every interval's mean, std, bounds and seeds",
}


@dataclass(frozen=True)
class PaperRow:
    """One row of the paper's Table 3: its setting, training time (GPU minutes) and downstream metrics (percent,
    keyed by the downstream task of ``DOWNSTREAM_TASKS`` that measures them)."""

    ratio: str
    interval: str
    selection: str
    minutes: float
    downstream: dict[str, float]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.ratio, self.interval, self.selection)


def _paper(ratio, interval, selection, minutes, top1, miou, delta1) -> PaperRow:
    return PaperRow(ratio, interval, selection, minutes,
                    {"imagenet_s50_cls": top1, "nyuv2_seg": miou, "nyuv2_depth": delta1})


# "Nonparametric Teaching of Attention Learners" (ICLR 2026), Table 3: MultiMAE on ImageNet-S50; ImageNetS50 top-1,
# NYUv2 semantic segmentation mIoU and NYUv2 depth delta-1 after fine-tuning.
PAPER_TABLE3 = {row.key: row for row in [
    _paper("-", "-", "none", 1234, 92.2, 51.9, 52.1),
    _paper("cosine", "incremental", "random", 966, 88.6, 45.3, 49.6),
    _paper("cosine", "incremental", "soft", 995, 92.1, 52.2, 58.8),
    _paper("cosine", "fixed", "soft", 1301, 93.2, 53.6, 61.4),
    _paper("incremental", "incremental", "soft", 980, 92.3, 52.6, 57.2),
    _paper("incremental", "fixed", "soft", 1319, 92.4, 53.7, 62.1),
    _paper("cosine", "incremental", "hard", 972, 91.8, 49.5, 57.3),
    _paper("cosine", "fixed", "hard", 1285, 92.1, 53.0, 60.8),
    _paper("incremental", "incremental", "hard", 963, 91.4, 48.4, 57.2),
    _paper("incremental", "fixed", "hard", 1302, 92.5, 52.7, 59.5),
]}


def paper_time_vs_full(key: tuple[str, str, str]) -> float:
    """The paper's training time of row ``key`` over full data's (980 / 1234 = 0.794 for the adopted setting)."""
    return PAPER_TABLE3[key].minutes / PAPER_TABLE3[FULL].minutes


def paper_deltas(key: tuple[str, str, str]) -> dict[str, float]:
    """The paper's downstream metrics of row ``key`` minus full data's, in points, per downstream task (rounded to
    the table's one decimal, so 92.3 - 92.2 is 0.1, not 0.0999...)."""
    full = PAPER_TABLE3[FULL].downstream
    return {task: round(value - full[task], 1) for task, value in PAPER_TABLE3[key].downstream.items()}


# Our quality metrics (fractions of one, shown in percentage points): name, header, value of one run's results.
QUALITY = [
    *[(task, spec.column, lambda r, t=task: downstream_metric(r, t)) for task, spec in DOWNSTREAM_TASKS.items()],
    *[(key, header, lambda r, k=key: final_metric(r, k)) for key, header in PROBE_COLUMNS.items()],
]


def per_seed(row: dict, value) -> dict:
    """{seed: value} over an aggregated row's runs (``value`` of each run's results), reruns of a seed averaged;
    seeds without a finite value are left out."""
    by_seed: dict = {}
    for run in row["runs"]:
        v = value(run["result"])
        if v is not None and math.isfinite(v):
            seed = run["seed"] if isinstance(run["seed"], (int, float, str)) else json.dumps(run["seed"])
            by_seed.setdefault(seed, []).append(v)
    return {seed: sum(v) / len(v) for seed, v in by_seed.items()}


def _paired(compare, row: dict, reference: dict, value) -> Interval | None:
    return interval_or_none(compare, per_seed(row, value), per_seed(reference, value))


def compare_with_paper(rows: list[dict]) -> dict | None:
    """The side-by-side table from the report's aggregated rows (``tables.aggregate``), or None without a
    full-data row or without another Table-3 row. Each row's reference is the full-data row with the same
    ``differs`` (the most seeds among equals); rows without one are left out. ``reference``: the one without
    ``differs`` (else the first), for the header line.

    Returns {"reference": its row, "rows": [{"row", "paper", "paper_time_vs_full", "paper_delta": {task: points},
    "wall_vs_full", "compute_vs_full", "delta": {metric: Interval of fractions}}], "metrics": [(name, header)] of
    the quality metrics some row could be compared on, "compute": whether any row has a compute ratio}."""
    fulls = [r for r in rows if (r["ratio"], r["interval"], r["selection"]) == FULL]
    others = [r for r in rows if (r["ratio"], r["interval"], r["selection"]) in PAPER_TABLE3.keys() - {FULL}]
    if not fulls or not others:
        return None
    # A row is compared with the full-data row of the same other settings (``differs``: a sweep over, say, the
    # learning rate pairs each rate with its own full-data run), the one with the most seeds among equals.
    references = {}
    for full in sorted(fulls, key=lambda r: -r["seeds"]):  # stable: the table's order among equals
        references.setdefault(full["differs"], full)
    others = [row for row in others if row["differs"] in references]
    if not others:
        return None
    compared = []
    for row in others:
        key = (row["ratio"], row["interval"], row["selection"])
        reference = references[row["differs"]]
        compared.append({
            "row": row, "paper": PAPER_TABLE3[key], "paper_time_vs_full": paper_time_vs_full(key),
            "paper_delta": paper_deltas(key),
            "wall_vs_full": _paired(paired_ratio, row, reference, training_wall),
            "compute_vs_full": _paired(paired_ratio, row, reference, train_equivalents),
            "delta": {name: _paired(paired_difference, row, reference, value) for name, _, value in QUALITY},
        })
    metrics = [(name, header) for name, header, _ in QUALITY if any(c["delta"][name] for c in compared)]
    return {"reference": references.get("", next(iter(references.values()))), "rows": compared, "metrics": metrics,
            "compute": any(c["compute_vs_full"] for c in compared)}


def _cell(interval: Interval | None, **fmt) -> str:
    return "-" if interval is None else interval.format(**fmt)


def _columns(table: dict) -> list[tuple[str, Callable[[dict], str]]]:
    """(header, cell of a compared row) of the Markdown table, paper and ours side by side per task."""
    ours = dict(table["metrics"])
    columns = [("ratio", lambda c: c["row"]["ratio"]), ("interval", lambda c: c["row"]["interval"]),
               ("selection", lambda c: c["row"]["selection"]), ("experiment", lambda c: c["row"]["experiment"])]
    if any(c["row"]["differs"] for c in table["rows"]):
        columns.append(("differs", lambda c: c["row"]["differs"]))
    columns += [("paper: time", lambda c: f"{c['paper'].minutes:g}m"),
                ("paper: vs full", lambda c: f"{c['paper_time_vs_full']:.3f}"),
                ("ours: wall vs full", lambda c: _cell(c["wall_vs_full"], digits=3, signed=False))]
    if table["compute"]:
        columns.append(("ours: compute vs full", lambda c: _cell(c["compute_vs_full"], digits=3, signed=False)))
    for task, spec in DOWNSTREAM_TASKS.items():
        columns.append((f"paper: Δ {spec.column}", lambda c, t=task: f"{c['paper_delta'][t]:+.1f}"))
        if task in ours:
            columns.append((f"ours: Δ {spec.column} (pp)",
                            lambda c, t=task: _cell(c["delta"][t], scale=100, digits=2)))
    columns += [(f"ours: Δ {header} (pp)", lambda c, k=name: _cell(c["delta"][k], scale=100, digits=2))
                for name, header in table["metrics"] if name in PROBE_COLUMNS]
    return columns


def _reference_line(table: dict) -> str:
    ref = table["reference"]
    paper = PAPER_TABLE3[FULL]
    line = (f"Full data (the reference): paper {paper.minutes:g}m, "
            + ", ".join(f"{DOWNSTREAM_TASKS[t].column} {v:.1f}" for t, v in paper.downstream.items())
            + f"; ours `{ref['experiment']}`" + (f" ({ref['differs']})" if ref["differs"] else "")
            + f", seeds {ref['seed_values']}")
    values = {name: per_seed(ref, value) for name, _, value in QUALITY}
    shown = [f"{header} {mean_interval(values[name].values()).format(scale=100, digits=2, signed=False)}"
             for name, header in table["metrics"] if values[name]]
    return line + (": " + ", ".join(shown) if shown else "") + "."


NOTE = ("Paper: one run per setting; its training time (GPU minutes) and that time over full data's, and its "
        "downstream metrics minus full data's in points. Ours: each run against the full-data run of the same seed "
        "(trainer.seed; reruns of a seed averaged first), the mean over the seeds both have and its 95% Student-t "
        "interval [low, high] (n = those seeds; no interval with one). Wall: time without validation and probes; "
        "compute: results.json compute.train_equivalents. Δ: differences in percentage points; an interval that "
        "excludes 0 is a difference the seeds resolve.")


def table3_markdown(table: dict) -> str:
    columns = _columns(table)
    lines = ["## The paper's Table 3 beside ours", "", _reference_line(table), "",
             "| " + " | ".join(h for h, _ in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(c) for _, cell in columns) + " |" for c in table["rows"]]
    return "\n".join([*lines, "", NOTE]) + "\n"


def _interval_fields(prefix: str, interval: Interval | None, scale: float = 1.0) -> dict:
    if interval is None:
        return {}
    scaled = {"mean": interval.mean, "std": interval.std, "low": interval.low, "high": interval.high}
    out = {f"{prefix}_{k}": ("" if v is None else v * scale) for k, v in scaled.items()}
    return {**out, f"{prefix}_n": interval.n, f"{prefix}_seeds": " ".join(map(str, interval.seeds))}


def table3_csv_rows(table: dict) -> list[dict]:
    """One dict per compared row: the paper's numbers and every interval of ours (deltas in percentage points)."""
    out = []
    for c in table["rows"]:
        row = {k: c["row"][k] for k in ("ratio", "interval", "selection", "experiment", "differs")}
        row |= {"paper_minutes": c["paper"].minutes, "paper_time_vs_full": c["paper_time_vs_full"]}
        row |= {f"paper_delta_{task}": delta for task, delta in c["paper_delta"].items()}
        row |= _interval_fields("ours_wall_vs_full", c["wall_vs_full"])
        row |= _interval_fields("ours_compute_vs_full", c["compute_vs_full"])
        for name, _ in table["metrics"]:
            row |= _interval_fields(f"ours_delta_pp_{name}", c["delta"][name], scale=100)
        out.append(row)
    return out


def write_table3(rows: list[dict], out_dir: Path) -> tuple[str, list[Path]]:
    """Write table3_vs_paper.md and .csv into ``out_dir`` when the rows allow the comparison (see
    ``compare_with_paper``); returns (its Markdown, the written paths), or ("", []) when skipped."""
    table = compare_with_paper(rows)
    if table is None:
        return "", []
    text = table3_markdown(table)
    md, csv_path = (Path(out_dir) / name for name in FILES)
    md.write_text(text)
    records = table3_csv_rows(table)
    fields = list(dict.fromkeys(k for r in records for k in r))
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(records)
    return text, [md, csv_path]
