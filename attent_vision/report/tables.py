"""The report's table: one row per setting, averaged over distinct seeds, as Markdown and CSV.

A row is a setting: experiment name, ratio, interval and selection, plus any other key of the run's resolved config
that differs between runs which share those four (``differs``), so a multirun over, say, the learning rate never
averages different learning rates. Only the seed and the keys that change neither the computation nor the
measurements (engine/run_identity.py) may differ within a row. Result files without a config (older ones) compare
their ``setting`` block instead. Runs of one row are grouped by their seed (``trainer.seed``): repeated runs
of one seed (reruns) are averaged into that seed's value first, then the row's value is the mean over distinct seeds
and its ± the standard deviation over them. ``seeds`` counts distinct seeds, ``reruns`` the runs beyond one per seed.
"""

import csv
import json
import math
import statistics
from pathlib import Path

from ..config.downstream_tasks import DOWNSTREAM_TASKS
from ..engine.results import COMPLETED
from ..engine.run_identity import computation_settings
from ..teaching.selection_record import records_of
from ..teaching.strategies import STRATEGIES
from .stats import seed_order

# Table 3's row order: full data first, then the paper's rows; anything else after, alphabetically.
TABLE3_ORDER = [
    ("-", "-", "none"),
    ("cosine", "incremental", "random"),
    ("cosine", "incremental", "soft"),
    ("cosine", "fixed", "soft"),
    ("incremental", "incremental", "soft"),
    ("incremental", "fixed", "soft"),
    ("cosine", "incremental", "hard"),
    ("cosine", "fixed", "hard"),
    ("incremental", "incremental", "hard"),
    ("incremental", "fixed", "hard"),
]
# The paper's three downstream numbers, in percent, one column per task.
DOWNSTREAM_COLUMNS = [task.column for task in DOWNSTREAM_TASKS.values()]
# The representation probes of results.json ``final`` (fractions; the table shows percent), with their headers.
PROBE_COLUMNS = {"probe_knn_top1": "probe kNN top1", "probe_linear_top1": "probe linear top1",
                 "probe_depth_delta1": "probe depth delta1"}
NUMERIC = ["wall_s", "rel_wall", "rel_compute", "train_s", "scoring_s", "data_wait_s", "eval_s", "samples_seen",
           "samples_scored", "score_rho", "optimizer_steps", "train_equivalents", "val_loss", *PROBE_COLUMNS,
           *DOWNSTREAM_COLUMNS]
# Setting fields that name the row or its seed; the rest of ``setting`` may split a row (``differs``).
ROW_FIELDS = ("ratio", "interval", "selection", "seed")


def downstream_metric(result: dict, task: str) -> float:
    """The final main metric of downstream ``task`` in a pretraining run's results; NaN when absent, and when the
    task did not complete (an interrupted fine-tune's ``final`` is that of its last epoch, not the task's result:
    files written before the run's status covered its tasks say ``completed`` beside such a task). Entries without
    a status (made by hand) are read as they are. Files written before metrics carried the ``val_`` prefix name it
    without."""
    entry = (result.get("downstream") or {}).get(task) or {}
    if entry.get("status", COMPLETED) != COMPLETED:
        return math.nan
    final = entry.get("final") or {}
    metric = DOWNSTREAM_TASKS[task].metric
    value = final.get(metric, final.get(metric.removeprefix("val_")))
    return math.nan if value is None else float(value)


def final_metric(result: dict, key: str) -> float:
    """``final[key]`` of a run's results (a probe's metric), NaN when absent."""
    value = (result.get("final") or {}).get(key)
    return math.nan if value is None else float(value)


def training_wall(result: dict) -> float:
    """Wall seconds of a run without validation and probes: they measure the model, they do not train it."""
    t = result["time_s"]
    return t["total"] - t.get("eval", 0.0) - (t.get("probe") or 0.0)


def score_repeatability(result: dict) -> float:
    """The mean Spearman rho of the run's selections' repeatability checks (teaching/repeatability.py): how well
    its scores repeat under independent draws; NaN when no selection measured it."""
    rhos = [s.repeatability["spearman"] for s in records_of(result)
            if (s.repeatability or {}).get("spearman") is not None]
    return sum(rhos) / len(rhos) if rhos else math.nan


def train_equivalents(result: dict) -> float:
    """The run's compute in trained samples (results.json ``compute.train_equivalents``; NaN in older files)."""
    value = (result.get("compute") or {}).get("train_equivalents")
    return math.nan if value is None else float(value)


def trains_full_data(selection: str) -> bool:
    """Whether runs of selection strategy ``selection`` train on full data every epoch (the baseline row; a name no
    longer registered is read as a subset method)."""
    return selection in STRATEGIES and not STRATEGIES[selection].trains_on_subsets


def setting_key(result: dict) -> tuple[str, str, str]:
    s = result["setting"]
    if trains_full_data(s["selection"]):
        return ("-", "-", s["selection"])
    return (s["ratio"], s["interval"], s["selection"])


def run_row(result: dict) -> dict:
    """One run's numbers (before averaging over seeds); ``result`` is kept for the plots."""
    t = result["time_s"]
    ratio, interval, selection = setting_key(result)
    row = {
        "experiment": result.get("experiment", ""), "ratio": ratio, "interval": interval, "selection": selection,
        "seed": result.get("seed", result["setting"].get("seed")), "status": result["status"],
        "setting": run_settings(result), "result": result,
        "wall_s": t["total"], "train_s": t["train"], "scoring_s": t["scoring"], "data_wait_s": t["data_wait"],
        "eval_s": t["eval"], "samples_seen": result["samples_seen"], "samples_scored": result["samples_scored"],
        "optimizer_steps": result["optimizer_steps"],
        "val_loss": math.nan if result["final"].get("val_loss") is None else result["final"]["val_loss"],
        "train_equivalents": train_equivalents(result), "score_rho": score_repeatability(result),
    }
    for key in PROBE_COLUMNS:
        row[key] = 100 * final_metric(result, key)
    for task, spec in DOWNSTREAM_TASKS.items():
        row[spec.column] = 100 * downstream_metric(result, task)
    return row


# Where a run ran, not what it computed: results do not depend on the rank count (tested), so runs that differ only
# in these are reruns of one setting, not separate rows (for result files without a config).
NOT_A_SETTING = {"seed", "world_size", "device", "precision"}


def run_settings(result: dict) -> dict:
    """What makes a run's setting, flattened: its resolved config without the seed and the keys outside the
    computation; for older result files without a config, its ``setting`` block without where it ran."""
    if result.get("config"):
        return computation_settings(result["config"])
    return {k: v for k, v in result["setting"].items() if k not in set(ROW_FIELDS) | NOT_A_SETTING}


def _differs(members: list[dict]) -> list[str]:
    """The settings whose values differ between ``members`` (runs sharing experiment and the row fields)."""
    fields = sorted({k for m in members for k in m.get("setting", {})})
    return [k for k in fields if len({json.dumps(m.get("setting", {}).get(k)) for m in members}) > 1]


def seed_list(seeds) -> list:
    """The distinct seeds, numbers first in numeric order (a seed that could not be read is a string)."""
    return seed_order({json.dumps(s): s for s in seeds}.values())


def _mean_over_seeds(members: list[dict], column: str) -> tuple[float, float]:
    """(mean, standard deviation) of ``column`` over distinct seeds, each seed's reruns averaged first."""
    by_seed: dict[str, list[float]] = {}
    for m in members:
        value = m.get(column, math.nan)
        if not math.isnan(value):
            by_seed.setdefault(json.dumps(m["seed"]), []).append(value)
    values = [statistics.fmean(v) for v in by_seed.values()]
    return (statistics.fmean(values) if values else math.nan,
            statistics.stdev(values) if len(values) > 1 else math.nan)


def aggregate(rows: list[dict]) -> list[dict]:
    """Average runs of one setting over distinct seeds: mean, and standard deviation in ``<column>_std``."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["experiment"], row["ratio"], row["interval"], row["selection"]), []).append(row)
    split: dict[tuple, list[dict]] = {}
    for key, members in groups.items():
        fields = _differs(members)
        for m in members:
            differs = ", ".join(f"{k}={m['setting'].get(k)}" for k in fields)
            split.setdefault((*key, differs), []).append(m)
    out = []
    for (experiment, ratio, interval, selection, differs), members in split.items():
        seeds = seed_list(m["seed"] for m in members)
        row = {"experiment": experiment, "ratio": ratio, "interval": interval, "selection": selection,
               "differs": differs, "seeds": len(seeds), "reruns": len(members) - len(seeds),
               "seed_values": " ".join(map(str, seeds)),
               "status": ",".join(sorted({m["status"] for m in members})), "runs": members}
        for column in NUMERIC:
            row[column], row[f"{column}_std"] = _mean_over_seeds(members, column)
        out.append(row)
    fulls = [r for r in out if trains_full_data(r["selection"])]
    for row in out:
        # The full-data row of the same other settings; with one full-data row, that one.
        full = fulls[0] if len(fulls) == 1 else next((f for f in fulls if f["differs"] == row["differs"]), None)
        row["rel_wall"] = row["wall_s"] / full["wall_s"] if full else math.nan
        full_compute = full["train_equivalents"] if full else math.nan
        row["rel_compute"] = row["train_equivalents"] / full_compute if full_compute else math.nan
    order = {key: i for i, key in enumerate(TABLE3_ORDER)}
    out.sort(key=lambda r: (order.get((r["ratio"], r["interval"], r["selection"]), len(order)), r["experiment"],
                            r["differs"]))
    for row, label in zip(out, row_labels(out)):
        row["label"] = label
    return out


def row_labels(rows: list[dict]) -> list[str]:
    """Short names for the plots' legends: selection / ratio / interval ("full data" for the full-data row), with
    the experiment and then the differing fields added only where that alone would name two rows alike."""
    labels = ["full data" if trains_full_data(r["selection"]) else f"{r['selection']} / {r['ratio']} / {r['interval']}"
              for r in rows]
    for extra in (lambda r: r["experiment"], lambda r: r["differs"]):
        # Added only where it tells two rows of one label apart (two rows of one experiment gain nothing from it).
        telling = {label for label in labels
                   if len({extra(r) for other, r in zip(labels, rows) if other == label}) > 1}
        labels = [f"{label} ({extra(r)})" if label in telling and extra(r) else label for label, r in zip(labels, rows)]
    return labels


def _cell(row: dict, column: str, digits: int) -> str:
    value = row.get(column, math.nan)
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    spread = row.get(f"{column}_std", math.nan)
    if isinstance(spread, float) and not math.isnan(spread):
        text += f" ± {spread:.{digits}f}"
    return text


MARKDOWN_COLUMNS = [  # (header, column, digits)
    ("experiment", "experiment", 0), ("ratio", "ratio", 0), ("interval", "interval", 0),
    ("selection", "selection", 0), ("differs", "differs", 0), ("seeds", "seeds", 0), ("reruns", "reruns", 0),
    ("wall s", "wall_s", 1), ("vs full", "rel_wall", 3), ("compute vs full", "rel_compute", 3),
    ("train s", "train_s", 1), ("scoring s", "scoring_s", 1),
    ("data wait s", "data_wait_s", 1), ("eval s", "eval_s", 1), ("samples seen", "samples_seen", 0),
    ("samples scored", "samples_scored", 0), ("score rho", "score_rho", 2), ("steps", "optimizer_steps", 0),
    ("val loss", "val_loss", 4),
    *[(f"{name} %", key, 1) for key, name in PROBE_COLUMNS.items()], *[(name, name, 1) for name in DOWNSTREAM_COLUMNS],
]
# Columns shown only when some row has a value in them: compute, probes and downstream metrics (newer or optional
# parts of results.json), and the rerun and differs columns.
OPTIONAL_COLUMNS = {"rel_compute", "score_rho", *PROBE_COLUMNS, *DOWNSTREAM_COLUMNS, "differs", "reruns"}


def _shown(row: dict, column: str) -> bool:
    value = row.get(column)
    return not math.isnan(value) if isinstance(value, float) else bool(value)


def to_markdown(rows: list[dict]) -> str:
    """The table in Markdown, and a note on reruns when some seed ran more than once."""
    columns = [(h, c, d) for h, c, d in MARKDOWN_COLUMNS
               if c not in OPTIONAL_COLUMNS or any(_shown(r, c) for r in rows)]
    lines = ["| " + " | ".join(h for h, _, _ in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = [_cell(row, c, d) for _, c, d in columns]
        lines.append("| " + " | ".join(cells) + " |")
    reruns = sum(r.get("reruns", 0) for r in rows)
    if reruns:
        lines.append(f"\n{reruns} run(s) repeat a seed (trainer.seed) already run for their setting: each seed's "
                     "reruns are averaged first, `seeds` counts distinct seeds and ± is the standard deviation over "
                     "them.")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], path: Path) -> None:
    columns = ["experiment", "ratio", "interval", "selection", "differs", "seeds", "reruns", "seed_values", "status"]
    columns += [c for col in NUMERIC for c in (col, f"{col}_std")]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
