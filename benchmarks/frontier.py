"""Time-to-quality frontier, downstream: how much compute each method needs to reach the full-data run's probe
accuracy, and whether scored selection beats matched random subsets, per seed, with 95% intervals.

Per regime, a pilot first trains full data for a long run, probing it every few epochs, and finds where its linear
probe accuracy plateaus (the first probed epoch within one point of the best, averaged over the pilot seeds); that
epoch count is the reference budget (b=1). Every method then trains at budgets around it (fractions of b=1), for
every seed, all in this one process on this machine, interleaved per seed (regime, seed, budget, method) so that
slow drifts of the machine hit every method alike. Quality: the representation probes at the end of each run
(results.json ``final.probe_*``: linear and kNN top-1 on the embedded ImageNet-S50-like set, depth delta1 on the
NYUv2-like frames). Cost: ``compute.train_equivalents`` (deterministic), with the training wall time beside it.

Methods: full (full data, the reference), random (uniform subsets on the AtteNT plan, one draw per cycle), random_rs2
(a fresh uniform draw before every subset epoch: RS2, the strongest known random baseline), soft_pass (the paper's
AtteNT: loss scores from a scoring pass over all samples before each selection), soft_free (the same with free
training-step scores and a budgeted refresh), prune (InfoBatch-style); on request soft_learn, hard_learn (learnability
scores), hard; and the score options of issue 22 (``--methods scores``: soft_pass_k4, soft_pass_topq,
soft_pass_shared, soft_free_norm beside both random baselines, the paper's soft_pass and soft_learn). Regimes: clean
(every scene distinct) and redundant (half the scenes are near-duplicates of others).
Both shrink the CPU default (MultiMAE-nano at 32 px instead of 64, 512 scenes instead of 1,024) so that the seeds
and baselines fit in about an hour on 2 cores; docs/benchmarks.md says what this changes.

    python benchmarks/frontier.py                              # pilots; 2 regimes x 6 methods x 2 budgets x 6 seeds
    python benchmarks/frontier.py --regimes clean --seeds 0 1      # a quicker look
    python benchmarks/frontier.py --reference-epochs 30            # skip the pilots: b=1 is 30 epochs
    python benchmarks/frontier.py trainer.precision=fp32 --finetune   # train.py overrides go first (or after --)

Results: <out>/summary.md, summary.json and frontier_<regime>.png. Run folders are <out>/<regime>/seed<s>_b<budget>_
<method> (pilots: <out>/<regime>/pilot_seed<s>); rerunning the same command into the same --out reuses every
completed run (Ctrl-C loses nothing finished).
"""

import argparse
import dataclasses
import json
import logging
import math
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]  # the package, and the frontier_* modules

from frontier_math import QUALITY, plateau, selection_numbers, summarise, to_markdown
from frontier_plan import (
    ARGUMENTS,
    DEFAULT_METHODS,
    METHOD_SETS,
    METHODS,
    REGIMES,
    TASKS,
    BadInput,
    check_methods,
    compose_train,
    pilot_overrides,
    plan_runs,
    run_overrides,
)
from frontier_plot import plot_frontier

from attent_vision.config import validate_train_config
from attent_vision.config.downstream_tasks import DOWNSTREAM_TASKS
from attent_vision.engine.results import COMPLETED, write_json_atomic
from attent_vision.report import downstream_metric
from attent_vision.report.tables import training_wall

log = logging.getLogger("frontier")


def run_pretraining(overrides: list[str], run_dir: Path) -> dict:
    """The real run: train.py's config with these overrides, pretrained (and fine-tuned) into ``run_dir``."""
    from attent_vision.cli.entry import pretrain_job

    cfg = compose_train(overrides)
    validate_train_config(cfg)
    return pretrain_job(cfg, run_dir)


def prepare_data(overrides: list[str]) -> None:
    """Generate a regime's embedded data and probe sets (and the downstream data when it fine-tunes)."""
    from attent_vision.pretraining.builders import dataset_root
    from attent_vision.probes.data import embedded_roots

    cfg = compose_train(overrides)
    dataset_root(cfg)
    embedded_roots(cfg.probe.embedded)
    if cfg.downstream.tasks:
        from attent_vision.data.downstream.embedded import ensure_synthetic_downstream

        ensure_synthetic_downstream()


def check_out(out: Path, arguments: dict) -> None:
    """Record the arguments in <out>/benchmark.json; an --out that holds another benchmark is refused, since its
    completed runs would be reused as if they were this one's."""
    path = out / "benchmark.json"
    if path.exists():
        old = json.loads(path.read_text())
        differ = [f"{k}: {old.get(k)} there, {arguments[k]} now" for k in ARGUMENTS if old.get(k) != arguments[k]]
        if differ:
            raise BadInput(f"{out} holds a frontier benchmark with other arguments ({'; '.join(differ)}); use "
                           "another --out or the same arguments")
        return
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(arguments, path)


def complete(result: dict, finetunes: bool) -> bool:
    # pretrain_job marks pretraining completed before it fine-tunes, so a run stopped while fine-tuning says
    # "completed" without its downstream results.
    return result.get("status") == COMPLETED and (not finetunes or set(TASKS) <= set(result.get("downstream") or {}))


def reusable(folder: Path, finetunes: bool) -> dict | None:
    """A completed run's results; an incomplete run folder is deleted so that the run starts clean."""
    if not folder.exists():
        return None
    try:
        result = json.loads((folder / "results.json").read_text())
    except (OSError, ValueError):
        result = {}
    if complete(result, finetunes):
        log.info("reusing %s", folder)
        return result
    log.info("%s is incomplete (status %s): deleting it and running it again", folder,
             result.get("status", "unknown, no results.json"))
    shutil.rmtree(folder)
    return None


def run_numbers(result: dict) -> dict:
    """What the benchmark keeps of one run's results dict."""
    final = result["final"]
    downstream = {DOWNSTREAM_TASKS[task].column: 100 * downstream_metric(result, task)
                  for task in TASKS if task in (result.get("downstream") or {})}
    return {"wall_s": training_wall(result), "total_s": result["time_s"]["total"],
            "scoring_s": result["time_s"]["scoring"], "val_loss": final["val_loss"],
            **{q: final.get(q) for q in QUALITY}, "train_equivalents": result["compute"]["train_equivalents"],
            "samples_seen": result["samples_seen"], "device": (result.get("setting") or {}).get("device"),
            "selections": selection_numbers(result.get("selections", [])),
            "downstream": {k: None if math.isnan(v) else v for k, v in downstream.items()}}


def run_or_reuse(folder: Path, overrides: list[str], finetunes: bool, run_one) -> dict:
    result = reusable(folder, finetunes)
    if result is None:
        result = run_one(overrides, folder)
        if not complete(result, finetunes):
            status = result.get("status")
            why = "completed without its downstream results" if status == COMPLETED else f"ended {status}"
            raise SystemExit(f"frontier.py: run {folder} {why} (see the log above and its results.json); rerun the "
                             "same command: finished runs are reused and this one runs again")
    return result


def run_pilots(args, out: Path, run_one, prepare) -> dict[str, dict]:
    """Per regime: the long full-data runs, their probe curves and the plateau epoch (the reference budget), or
    ``--reference-epochs`` when given."""
    pilots = {}
    for regime in args.regimes:
        if args.reference_epochs:
            pilots[regime] = {"reference_epochs": args.reference_epochs, "from": "--reference-epochs"}
            continue
        prepare(list(pilot_overrides(args, regime, args.pilot_seeds[0])))
        curves = {}
        for seed in args.pilot_seeds:
            log.info("pilot: regime %s, seed %d, %d epochs of full data", regime, seed, REGIMES[regime].pilot_epochs)
            result = run_or_reuse(out / regime / f"pilot_seed{seed}", list(pilot_overrides(args, regime, seed)),
                                  False, run_one)
            curves[seed] = [(h["epoch"], h[QUALITY[0]]) for h in result["history"] if QUALITY[0] in h]
        epoch, mean = plateau(curves)
        pilots[regime] = {"reference_epochs": epoch, "from": "pilot", "curve": mean,
                          "curves": {str(s): c for s, c in curves.items()}}
        log.info("pilot: regime %s plateaus at epoch %d (linear top-1 per probed epoch: %s)", regime, epoch,
                 ", ".join(f"{e}: {100 * q:.1f}" for e, q in mean))
    return pilots


def run_benchmark(args, out: Path, run_one=run_pretraining, prepare=prepare_data) -> tuple[dict, dict, dict]:
    """Pilots, then every run of the plan (or their reuse); returns per regime {(seed, budget, method): run
    numbers}, what each regime is and the pilots. ``run_one(overrides, run_dir) -> results dict`` runs one
    configuration; ``prepare(overrides)`` generates a regime's data before its first run (no run is charged)."""
    check_methods(args)
    check_out(out, {k: getattr(args, k) for k in ARGUMENTS})
    pilots = run_pilots(args, out, run_one, prepare)
    plan, regimes = plan_runs(args, {r: p["reference_epochs"] for r, p in pilots.items()})
    numbers, prepared = {regime: {} for regime in args.regimes}, set()
    for i, run in enumerate(plan, 1):
        if run.regime not in prepared:
            prepare(list(run_overrides(args, run.regime, "full", run.seed, run.epochs, args.finetune)))
            prepared.add(run.regime)
        log.info("[%d/%d] regime %s, seed %d, budget %s (%d epochs), method %s", i, len(plan), run.regime, run.seed,
                 run.budget, run.epochs, run.method)
        folder = out / run.regime / run.name
        result = run_or_reuse(folder, list(run.overrides), args.finetune and run.budget == 1.0, run_one)
        numbers[run.regime][(run.seed, run.budget, run.method)] = {**run_numbers(result), "run_dir": str(folder),
                                                                   "epochs": run.epochs}
    return numbers, regimes, pilots


NOTES = ("Quality: the probes at the end of each run, in percent (linear and kNN top-1 on 2,500 validation images of "
         "the embedded ImageNet-S50-like set, depth delta1 on its NYUv2-like frames). Cost: compute.train_equivalents "
         "(FLOP-weighted samples: training + scoring + reference model), as a fraction of the same seed's full-data "
         "run at b=1; wall excludes validation and probes. Intervals: mean and 95% Student-t interval over seeds, of "
         "per-seed ratios (costs) or per-seed differences (qualities, against the same seed's random and full runs "
         "at b=1). Compute to reach: along the method's budgets (linear between them), where its linear top-1 first "
         "comes within one point of the same seed's full data at b=1; \"<=\" when the smallest budget already does.\n")


def plain(value):
    """``value`` with every Interval as a dict of its fields (for summary.json)."""
    if dataclasses.is_dataclass(value):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def write_outputs(args, out: Path, numbers: dict, regimes: dict, pilots: dict, command: str) -> str:
    """summary.json, summary.md and one plot per regime; returns the tables (Markdown) for the console."""
    date = time.strftime("%Y-%m-%d %H:%M")
    devices = sorted({str(n["device"]) for runs in numbers.values() for n in runs.values() if n["device"]})
    machine = f"{os.cpu_count()} CPU cores, {platform.platform()}; device {', '.join(devices) or 'unknown'}"
    summaries, sections = {}, []
    for regime in args.regimes:
        info, pilot = regimes[regime], pilots[regime]
        summary = summarise(numbers[regime], args.methods, args.budgets, args.seeds)
        title = (f"{regime}: {info['scenes']} scenes (duplicates {info['duplicate_fraction']}), {info['model']} at "
                 f"{info['image_size']} px, b=1 = {info['reference_epochs']} epochs, seeds "
                 f"{' '.join(map(str, args.seeds))}")
        plot_frontier(summary, out / f"frontier_{regime}.png", title)
        curve = ("; pilot (full data, linear top-1 % by epoch, mean over seeds "
                 f"{' '.join(map(str, args.pilot_seeds))}): " + ", ".join(f"{e}: {100 * q:.1f}" for e, q in
                                                                          pilot["curve"])) if "curve" in pilot else ""
        epochs = ", ".join(f"{b}: {e}" for b, e in info["epochs"].items())
        sections.append(f"## {title}\n\nEpochs per budget: {epochs}; batch {info['batch_size']}{curve}.\n\n"
                        f"{to_markdown(summary, len(args.seeds))}\n![frontier](frontier_{regime}.png)\n")
        summaries[regime] = {"regime": info, "pilot": pilot, "summary": summary,
                             "runs": {f"seed{s}_b{b}_{m}": n for (s, b, m), n in numbers[regime].items()}}
    write_json_atomic(plain({"command": command, "date": date, "machine": machine,
                             "arguments": {k: getattr(args, k) for k in ARGUMENTS}, "regimes": summaries}),
                      out / "summary.json")
    body = "\n".join(sections)
    (out / "summary.md").write_text(f"# Downstream frontier\n\n`{command}`\n\n{date}; {machine}.\n\n{NOTES}\n{body}")
    return body


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="frontier.py", description=__doc__.splitlines()[0])
    sets = "; ".join(f"{name} = {' '.join(methods)}" for name, methods in METHOD_SETS.items())
    p.add_argument("--methods", nargs="+", choices=[*METHODS, *METHOD_SETS], default=list(DEFAULT_METHODS),
                   metavar="METHOD", help=f"of {', '.join(METHODS)}, or a set: {sets} (default: the default set); "
                   "full is required")
    p.add_argument("--budgets", type=float, nargs="+", default=[0.5, 1.0],
                   help="fractions of the reference epochs; must include 1.0")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    p.add_argument("--pilot-seeds", type=int, nargs="+", default=[100, 101],
                   help="seeds of the pilots (apart from --seeds: the pilot does not choose b=1 on the runs it judges)")
    p.add_argument("--reference-epochs", type=int, default=None, help="skip the pilots: b=1 is this many epochs")
    p.add_argument("--regimes", nargs="+", choices=list(REGIMES), default=list(REGIMES), metavar="REGIME",
                   help=f"of {', '.join(REGIMES)} (default: both)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default outputs/benchmarks/frontier_<date>)")
    p.add_argument("--finetune", action="store_true", help="fine-tune the budget-1.0 runs on the downstream tasks")
    p.add_argument("overrides", nargs="*", help="train.py overrides applied last to every run")
    return p


def check_args(parser: argparse.ArgumentParser, args) -> None:
    """Argument errors as one line each (parser.error), before anything is composed or run."""
    # A set name stands for its methods, in order; a method named twice (by a set and by name) runs once
    args.methods = list(dict.fromkeys(m for name in args.methods for m in METHOD_SETS.get(name, (name,))))
    if any(not math.isfinite(b) or b <= 0 for b in args.budgets):
        parser.error(f"--budgets must be positive fractions of the reference epochs, got {args.budgets}")
    for name in ("budgets", "seeds", "methods", "regimes", "pilot_seeds"):
        values = getattr(args, name)
        if len(set(values)) < len(values):
            parser.error(f"--{name.replace('_', '-')} has duplicates: {values}")
    if 1.0 not in args.budgets:
        parser.error(f"--budgets must include 1.0 (the full-data run at 1.0 is the reference), got {args.budgets}")
    if any(s < 0 for s in args.seeds + args.pilot_seeds):
        parser.error(f"--seeds and --pilot-seeds must be >= 0, got {args.seeds} and {args.pilot_seeds}")
    if args.reference_epochs is not None and args.reference_epochs < 1:
        parser.error(f"--reference-epochs must be >= 1, got {args.reference_epochs}")
    if "full" not in args.methods:
        parser.error("the full-data run 'full' is the reference; keep it in --methods")
    args.budgets = sorted(args.budgets)  # the frontier runs in budget order


def main(argv=None, run_one=run_pretraining, prepare=prepare_data) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(levelname)s] %(message)s", datefmt="%H:%M:%S")
    out = args.out or REPO / "outputs" / "benchmarks" / f"frontier_{time.strftime('%Y-%m-%d')}"
    try:
        numbers, regimes, pilots = run_benchmark(args, out, run_one, prepare)
    except BadInput as e:
        parser.error(str(e))
    except KeyboardInterrupt:
        raise SystemExit(f"frontier.py: interrupted; finished runs are kept in {out}: rerun the same command "
                         "to continue") from None
    tables = write_outputs(args, out, numbers, regimes, pilots, "python benchmarks/frontier.py " + shlex.join(argv))
    print(tables)
    print(f"wrote {out}/summary.md, summary.json and frontier_<regime>.png")


if __name__ == "__main__":
    main()
