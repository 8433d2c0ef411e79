"""The Table-3 report: pretraining runs (a multirun folder or several run folders) as one table and two plots.

    attent-report multirun/2026-11-28_21-29-51                 # writes report.md, report.csv, *.png there
    attent-report outputs/a outputs/b --out reports/ablation   # any run folders

One row per setting (ratio, interval, selection, plus the experiment name); runs that differ only in their seed
are averaged and their spread (standard deviation) is shown. Columns: wall time (and relative to the full-data
row), its split into training, scoring, data waiting and evaluation, samples seen and scored, optimizer steps, the
final validation loss, and downstream metrics when the runs fine-tuned at the end (``downstream.tasks``).
Plots: validation loss against wall time and against training samples seen (one curve per run), and the training
step's and scoring pass's throughput per epoch (so the cost of scoring relative to training is visible).

Only completed runs enter the table and the plots: a diverged, interrupted, failed or still-running run (and a
multirun job folder without results.json) is listed below the table with its status and why, never averaged in.
"""

import argparse
import csv
import math
import statistics
import sys
from pathlib import Path

from .config.downstream_tasks import DOWNSTREAM_TASKS
from .engine.results import COMPLETED, read_results

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
NUMERIC = ["wall_s", "rel_wall", "train_s", "scoring_s", "data_wait_s", "eval_s", "samples_seen", "samples_scored",
           "optimizer_steps", "val_loss", *DOWNSTREAM_COLUMNS]


def find_results(paths: list[Path]) -> list[Path]:
    """Every results.json under the given run or multirun folders (or the files themselves)."""
    found = []
    for path in paths:
        path = Path(path)
        if path.is_file():
            found.append(path)
        elif (path / "results.json").is_file():
            found.append(path / "results.json")
        else:
            found += sorted(path.glob("*/results.json")) + sorted(path.glob("*/*/results.json"))
    return found


def jobs_without_results(paths: list[Path]) -> list[Path]:
    """Multirun job folders (they hold Hydra's .hydra/) that never wrote a results.json: jobs that crashed early."""
    jobs = [job for path in map(Path, paths) if path.is_dir() for job in sorted(path.glob("*/.hydra"))]
    return [job.parent for job in jobs if not (job.parent / "results.json").is_file()]


def why_left_out(result: dict) -> str:
    """Why a run is not in the table, in a few words."""
    status = result.get("status", "unknown")
    if status == "diverged" and result.get("diverged"):
        d = result["diverged"]
        return f"non-finite {d.get('what', 'values')} at step {d.get('step')}"
    if status == "interrupted":
        return f"stopped by a signal or step limit (exit {result.get('exit_code')}); rerun to resume"
    if status == "running":
        return "crashed or still running (results.json says running)"
    return str(result.get("error", status))


def left_out_markdown(results: list[dict], crashed: list[Path]) -> str:
    lines = ["| run | experiment | seed | status | why |", "|---|---|---|---|---|"]
    lines += [f"| {r.get('run_dir', '?')} | {r.get('experiment', '')} | {(r.get('setting') or {}).get('seed', '-')} "
              f"| {r.get('status')} | {why_left_out(r)} |" for r in results]
    lines += [f"| {job} | - | - | failed | no results.json (the job crashed before writing one) |" for job in crashed]
    return "\n".join(lines) + "\n"


def is_pretraining(result: dict) -> bool:
    """A pretraining run's results (files written before results carried a ``stage`` have ``selections``)."""
    return result.get("stage", "pretrain" if "selections" in result else None) == "pretrain"


def downstream_metric(result: dict, task: str) -> float:
    """The final main metric of downstream ``task`` in a pretraining run's results (NaN when absent). Files written
    before metrics carried the ``val_`` prefix name it without."""
    final = ((result.get("downstream") or {}).get(task) or {}).get("final") or {}
    metric = DOWNSTREAM_TASKS[task].metric
    value = final.get(metric, final.get(metric.removeprefix("val_")))
    return math.nan if value is None else float(value)


def step_rate(epoch: dict) -> float | None:
    """An epoch's training-step throughput (older files call it ``train_samples_per_s``)."""
    return epoch.get("step_samples_per_s", epoch.get("train_samples_per_s"))


def setting_key(result: dict) -> tuple[str, str, str]:
    s = result["setting"]
    if s["selection"] == "none":
        return ("-", "-", "none")
    return (s["ratio"], s["interval"], s["selection"])


def run_row(result: dict) -> dict:
    """One run's numbers (before averaging over seeds)."""
    t = result["time_s"]
    row = {
        "experiment": result.get("experiment", ""),
        "ratio": setting_key(result)[0], "interval": setting_key(result)[1], "selection": setting_key(result)[2],
        "seed": result["setting"].get("seed"), "status": result["status"],
        "wall_s": t["total"], "train_s": t["train"], "scoring_s": t["scoring"], "data_wait_s": t["data_wait"],
        "eval_s": t["eval"], "samples_seen": result["samples_seen"], "samples_scored": result["samples_scored"],
        "optimizer_steps": result["optimizer_steps"],
        "val_loss": math.nan if result["final"].get("val_loss") is None else result["final"]["val_loss"],
    }
    for task, spec in DOWNSTREAM_TASKS.items():
        row[spec.column] = 100 * downstream_metric(result, task)
    return row


def aggregate(rows: list[dict]) -> list[dict]:
    """Average runs of one setting over seeds: mean, and standard deviation in ``<column>_std``."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["experiment"], row["ratio"], row["interval"], row["selection"]), []).append(row)
    out = []
    for (experiment, ratio, interval, selection), members in groups.items():
        row = {"experiment": experiment, "ratio": ratio, "interval": interval, "selection": selection,
               "seeds": len(members), "status": ",".join(sorted({m["status"] for m in members}))}
        for column in NUMERIC:
            values = [m[column] for m in members if column in m and not math.isnan(m[column])]
            row[column] = statistics.fmean(values) if values else math.nan
            row[f"{column}_std"] = statistics.stdev(values) if len(values) > 1 else math.nan
        out.append(row)
    full = next((r for r in out if r["selection"] == "none"), None)
    for row in out:
        row["rel_wall"] = row["wall_s"] / full["wall_s"] if full else math.nan
    order = {key: i for i, key in enumerate(TABLE3_ORDER)}
    return sorted(out, key=lambda r: (order.get((r["ratio"], r["interval"], r["selection"]), len(order)),
                                      r["experiment"]))


def _cell(row: dict, column: str, digits: int) -> str:
    value = row.get(column, math.nan)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    spread = row.get(f"{column}_std", math.nan)
    if isinstance(spread, float) and not math.isnan(spread):
        text += f" ± {spread:.{digits}f}"
    return text


MARKDOWN_COLUMNS = [  # (header, column, digits)
    ("ratio", "ratio", 0), ("interval", "interval", 0), ("selection", "selection", 0), ("seeds", "seeds", 0),
    ("wall s", "wall_s", 1), ("vs full", "rel_wall", 3), ("train s", "train_s", 1), ("scoring s", "scoring_s", 1),
    ("data wait s", "data_wait_s", 1), ("eval s", "eval_s", 1), ("samples seen", "samples_seen", 0),
    ("samples scored", "samples_scored", 0), ("steps", "optimizer_steps", 0), ("val loss", "val_loss", 4),
    *[(name, name, 1) for name in DOWNSTREAM_COLUMNS],
]


def to_markdown(rows: list[dict]) -> str:
    """The table in Markdown; downstream columns appear only when some run has them."""
    downstream = set(DOWNSTREAM_COLUMNS)
    columns = [(h, c, d) for h, c, d in MARKDOWN_COLUMNS
               if c not in downstream or any(not math.isnan(r.get(c, math.nan)) for r in rows)]
    lines = ["| " + " | ".join(h for h, _, _ in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = [_cell(row, c, d) if isinstance(row.get(c), float) else str(row.get(c, "-")) for _, c, d in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], path: Path) -> None:
    columns = ["experiment", "ratio", "interval", "selection", "seeds", "status"]
    columns += [c for col in NUMERIC for c in (col, f"{col}_std")]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def curves(result: dict) -> tuple[list[float], list[float], list[float]]:
    """(wall seconds, samples seen, validation loss) at initialisation and after every validated epoch."""
    wall, seen, loss = [0.0], [0.0], [result.get("initial", {}).get("val_loss", math.nan)]
    for h in result["history"]:
        if "val_loss" in h:
            wall.append(h["wall_s"])
            seen.append(h["samples_seen"])
            loss.append(h["val_loss"])
    return wall, seen, loss


def _label(result: dict) -> str:
    r, i, s = setting_key(result)
    return f"{s} / {r} / {i} (seed {result['setting']['seed']})"


def plot(results: list[dict], out_dir: Path) -> list[Path]:
    """Validation loss against wall time and against samples seen; training and scoring throughput per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for result in results:
        epochs = [h["epoch"] for h in result["history"] if step_rate(h) is not None]
        rates = [step_rate(h) for h in result["history"] if step_rate(h) is not None]
        line, = ax.plot(epochs, rates, marker=".", label=f"train step: {_label(result)}")
        scored = [(s["epoch"], s["scoring_samples_per_s"]) for s in result.get("selections", [])
                  if "scoring_samples_per_s" in s]
        if scored:
            ax.scatter(*zip(*scored), marker="x", color=line.get_color(), label=f"scoring pass: {_label(result)}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("samples per second")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out_dir / "throughput.png", dpi=120)
    plt.close(fig)
    paths.append(out_dir / "throughput.png")
    for x_index, name, label in ((0, "val_loss_vs_wall_time.png", "wall time (s)"),
                                 (1, "val_loss_vs_samples_seen.png", "training samples seen")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for result in results:
            series = curves(result)
            ax.plot(series[x_index], series[2], marker=".", label=_label(result))
        ax.set_xlabel(label)
        ax.set_ylabel("validation loss")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=120)
        plt.close(fig)
        paths.append(out_dir / name)
    return paths


def build_report(paths: list[Path], out_dir: Path | None = None) -> dict:
    """Read every results.json under ``paths``; write report.md, report.csv and the plots to ``out_dir`` (default:
    the first path). Returns {"rows": aggregated rows, "files": written paths}."""
    files = find_results(paths)
    if not files:
        raise SystemExit(f"error: no results.json under {', '.join(map(str, paths))}; give a run or multirun folder")
    every = [r for r in map(read_results, files) if is_pretraining(r)]  # not the downstream fine-tunes
    if not every:
        raise SystemExit(f"error: no pretraining results.json under {', '.join(map(str, paths))} (only fine-tuning "
                         "runs); give a pretraining run or multirun folder")
    results = [r for r in every if r.get("status") == COMPLETED]
    left_out, crashed = [r for r in every if r.get("status") != COMPLETED], jobs_without_results(paths)
    rows = aggregate([run_row(r) for r in results])
    out_dir = Path(out_dir or (paths[0] if Path(paths[0]).is_dir() else Path(paths[0]).parent))
    out_dir.mkdir(parents=True, exist_ok=True)
    text = to_markdown(rows)
    if left_out or crashed:
        text += (f"\n{len(left_out) + len(crashed)} run(s) did not complete and are not in the table or the "
                 f"plots:\n\n{left_out_markdown(left_out, crashed)}")
    (out_dir / "report.md").write_text(text)
    write_csv(rows, out_dir / "report.csv")
    pngs = plot(results, out_dir) if results else []
    return {"rows": rows, "left_out": left_out, "crashed": crashed, "text": text,
            "files": [out_dir / "report.md", out_dir / "report.csv", *pngs]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="attent-report", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="multirun folders, run folders or results.json files")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the first path)")
    args = parser.parse_args(argv)
    report = build_report(args.paths, args.out)
    sys.stdout.write(report["text"])
    sys.stdout.write("\nwrote " + ", ".join(str(p) for p in report["files"]) + "\n")


if __name__ == "__main__":
    main()
