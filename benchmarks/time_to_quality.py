"""Time to quality: AtteNT (hard, soft) against full data and the matched random baseline, side by side.

Every strategy runs with the same epoch budget, data and seed, one after the other in this process on this
machine, then (unless --no-finetune) fine-tunes on the three downstream tasks. Reported per strategy:

- wall time relative to full data (each seed against its own full-data run);
- time to reach the full-data run's final validation loss (interpolated along the validation curve; "never" when
  it does not get there);
- the scoring overhead (scoring time as a fraction of the run) and the measured cost of scoring one sample
  relative to training on one (training samples/s over scoring samples/s);
- final validation loss and the downstream metrics.

    python benchmarks/time_to_quality.py                          # CPU defaults, about 20 minutes
    python benchmarks/time_to_quality.py --seeds 0 1 2            # mean ± spread over seeds
    python benchmarks/time_to_quality.py --no-finetune trainer.epochs=51 teaching.total_cycles=10   # any train.py override

Results: <out>/summary.md and summary.json, plus the full report (report.md/csv, loss and throughput plots).
"""

import argparse
import json
import logging
import math
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hydra import compose, initialize_config_dir  # noqa: E402

from attent_vision.config import register_configs, validate_train_config  # noqa: E402
from attent_vision.config.downstream_tasks import DOWNSTREAM_TASKS  # noqa: E402
from attent_vision.report import build_report, downstream_metric  # noqa: E402

TASKS = list(DOWNSTREAM_TASKS)


def compose_train(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def time_to_reach(result: dict, target: float) -> float:
    """Wall seconds at which the validation loss first reaches ``target`` (linear interpolation between
    validations); NaN when it never does."""
    points = [(0.0, result["initial"]["val_loss"])] + [(h["wall_s"], h["val_loss"]) for h in result["history"]
                                                         if "val_loss" in h]
    for (t0, l0), (t1, l1) in zip(points, points[1:]):
        if l1 <= target:
            return t1 if l0 == l1 else t0 + (t1 - t0) * (l0 - target) / (l0 - l1)
    return math.nan


def mean_rate(items: list[dict], key: str) -> float:
    values = [x[key] for x in items if key in x]
    return statistics.fmean(values) if values else math.nan


def summarise(runs: dict[tuple[int, str], dict]) -> list[dict]:
    per_strategy: dict[str, list[dict]] = {}
    for (seed, strategy), r in runs.items():
        full = runs[(seed, "none")]
        train_rate = mean_rate(r["history"], "step_samples_per_s")
        score_rate = mean_rate(r["selections"], "scoring_samples_per_s")
        row = {
            "rel_wall": r["time_s"]["total"] / full["time_s"]["total"],
            # Relative to the moment the full-data run itself got there (its last validation).
            "time_to_full_loss_rel": time_to_reach(r, full["final"]["val_loss"])
            / time_to_reach(full, full["final"]["val_loss"]),
            "scoring_fraction": r["time_s"]["scoring"] / r["time_s"]["total"],
            "train_samples_per_s": train_rate,
            "scoring_samples_per_s": score_rate,
            "scoring_cost_per_sample": train_rate / score_rate if score_rate == score_rate else math.nan,
            "samples_seen_rel": r["samples_seen"] / full["samples_seen"],
            "val_loss": r["final"]["val_loss"],
            "wall_s": r["time_s"]["total"],
        }
        for task, spec in DOWNSTREAM_TASKS.items():
            row[spec.column] = 100 * downstream_metric(r, task)
        per_strategy.setdefault(strategy, []).append(row)
    out = []
    for strategy, rows in per_strategy.items():
        entry = {"strategy": strategy, "seeds": len(rows)}
        for key in rows[0]:
            values = [r[key] for r in rows if not math.isnan(r[key])]
            entry[key] = statistics.fmean(values) if values else math.nan
            entry[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else math.nan
            entry[f"{key}_reached"] = len(values)
        out.append(entry)
    return out


COLUMNS = [("strategy", "strategy", None), ("seeds", "seeds", None), ("wall vs full", "rel_wall", 3),
           ("time to full's final loss (vs full)", "time_to_full_loss_rel", 3),
           ("scoring share of wall", "scoring_fraction", 3), ("samples seen vs full", "samples_seen_rel", 3),
           ("train samples/s", "train_samples_per_s", 0), ("scoring samples/s", "scoring_samples_per_s", 0),
           ("scoring cost per sample (x training)", "scoring_cost_per_sample", 2), ("final val loss", "val_loss", 4),
           *[(spec.column, spec.column, 1) for spec in DOWNSTREAM_TASKS.values()]]


def to_markdown(rows: list[dict]) -> str:
    def cell(row, key, digits):
        if digits is None:
            return str(row[key])
        value = row[key]
        if math.isnan(value):
            return "never" if key == "time_to_full_loss_rel" else "-"
        text = f"{value:.{digits}f}"
        if not math.isnan(row.get(f"{key}_std", math.nan)):
            text += f" ± {row[f'{key}_std']:.{digits}f}"
        if key == "time_to_full_loss_rel" and row[f"{key}_reached"] < row["seeds"]:
            text += f" ({row[f'{key}_reached']}/{row['seeds']} seeds)"
        return text

    lines = ["| " + " | ".join(h for h, _, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r, k, d) for _, k, d in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--strategies", nargs="+", default=["none", "random", "hard", "soft"])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default outputs/benchmarks/<date>)")
    parser.add_argument("--no-finetune", action="store_true", help="skip the downstream fine-tunes")
    parser.add_argument("overrides", nargs="*", help="train.py overrides applied to every run")
    args = parser.parse_args(argv)
    if "none" not in args.strategies:
        parser.error("the full-data run ('none') is the reference; keep it in --strategies")
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(levelname)s] %(message)s", datefmt="%H:%M:%S")
    log = logging.getLogger("time_to_quality")
    out = args.out or REPO / "outputs" / "benchmarks" / time.strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)

    from attent_vision.cli.entry import pretrain_job
    from attent_vision.data.downstream.embedded import ensure_synthetic_downstream
    from attent_vision.pretraining.builders import dataset_root

    # Generate the embedded data first, so that no run is charged for it.
    dataset_root(compose_train(args.overrides))
    if not args.no_finetune:
        ensure_synthetic_downstream()
    runs = {}
    for seed in args.seeds:
        for strategy in args.strategies:  # interleaved per seed, so slow drifts of the machine hit every strategy
            overrides = [f"selection={strategy}", f"trainer.seed={seed}", f"experiment_name=ttq_{strategy}",
                         "checkpoint.keep_last=1", *args.overrides]
            if not args.no_finetune:
                overrides.append(f"downstream.tasks=[{','.join(TASKS)}]")
            cfg = compose_train(overrides)
            validate_train_config(cfg)
            log.info("seed %d, strategy %s", seed, strategy)
            runs[(seed, strategy)] = pretrain_job(cfg, out / f"seed{seed}_{strategy}")
    rows = summarise(runs)
    (out / "summary.json").write_text(json.dumps({"runs": {f"seed{s}_{k}": v["run_dir"] for (s, k), v in runs.items()},
                                                  "summary": rows}, indent=2, default=float))
    table = to_markdown(rows)
    command = "python benchmarks/time_to_quality.py " + " ".join(sys.argv[1:] if argv is None else argv)
    (out / "summary.md").write_text(f"# Time to quality\n\n`{command}`\n\n{table}")
    build_report([out], out)
    print(table)
    print(f"wrote {out}/summary.md, summary.json, report.md, report.csv and plots")


if __name__ == "__main__":
    main()
