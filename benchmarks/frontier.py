"""Time-to-quality frontier: how fast each method reaches the full-data run's validation loss, across epoch budgets.

Every method trains at several epoch budgets (fractions of a reference epoch count) for several seeds, in two
regimes, all in this one process on this machine, interleaved per seed (regime, seed, budget, method) so that slow
drifts of the machine hit every method alike. Each method's (wall time, final validation loss) points across budgets
form its frontier; each seed is compared with the same seed's full-data run at budget 1.0 (loss L*, wall T*).

Methods: full (full data, the reference), random (uniform subsets on the AtteNT plan, the matched baseline), prune
(InfoBatch-style: below-mean samples dropped at random and rescaled, full-data tail), soft_learn (Gumbel-top-k on
learnability scores with unbiased subset weights, free scores), hard_learn (top-k on learnability), soft_pass (the
paper's AtteNT: loss scores from a scoring pass over all samples before each selection; by default at budget 1.0
only); on request also hard and soft (loss scores from the training steps plus a refresh: issue 11's methods).
Regimes: default (256 scenes, 26 reference epochs, batch 64: 4 steps per full epoch, the CPU default's schedule)
and many_epochs (64 scenes, 104 reference epochs, batch 16: the same samples trained but 4x the epochs per sample,
closer to the paper's 800 epochs). Both use multimae_pico and smaller data than the CPU default, because the
default setting is too slow for methods x budgets x seeds within an hour on 2 CPU cores.

Wall time excludes periodic validation (it measures the model, it does not train it). The tables and their
columns are described in summary.md; with --finetune the budget-1.0 runs also fine-tune on the downstream tasks.

    python benchmarks/frontier.py                                        # both regimes, 6 methods, 4 budgets, 3 seeds
    python benchmarks/frontier.py --regimes default --seeds 0            # a quicker look
    python benchmarks/frontier.py trainer.precision=fp32 --finetune      # train.py overrides go first (or after --)

Results: <out>/summary.md, summary.json and frontier_<regime>.png. Run folders are <out>/<regime>/seed<s>_b<budget>_
<method>; rerunning the same command into the same --out reuses every completed run (Ctrl-C loses nothing finished).
"""

import argparse
import json
import logging
import math
import os
import platform
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]  # the package, and frontier_math when imported

from frontier_math import selection_numbers, summarise, to_markdown, training_wall
from frontier_plot import plot_frontier
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from attent_vision.config import register_configs, validate_train_config
from attent_vision.config.downstream_tasks import DOWNSTREAM_TASKS
from attent_vision.engine.results import COMPLETED, write_json_atomic
from attent_vision.errors import UserError
from attent_vision.report import downstream_metric
from attent_vision.teaching.strategies import STRATEGIES

log = logging.getLogger("frontier")


@dataclass(frozen=True)
class Regime:
    overrides: tuple[str, ...]
    reference_epochs: int  # the epochs of budget 1.0


REGIMES = {
    "default": Regime(("model=multimae_pico", "data.synthetic.num_train=256", "data.synthetic.num_val=64"), 26),
    # A quarter of the scenes for 4x the epochs: the same samples trained, and cycles long enough for the larger
    # intervals and warm-up that the many-epoch schedule needs.
    "many_epochs": Regime(("model=multimae_pico", "data.synthetic.num_train=64", "data.synthetic.num_val=64",
                           "trainer.batch_size=16", "interval.initial_interval=8", "interval.max_interval=16",
                           "optim.warmup_epochs=8"), 104),
}
LEARNABILITY = ("teaching.score=learnability", "teaching.score_source=training")
METHODS = {
    "full": ("selection=none",),
    "random": ("selection=random",),
    "prune": ("selection=prune",),
    "soft_learn": ("selection=soft", "selection.reweight=unbiased", *LEARNABILITY),
    "hard_learn": ("selection=hard", *LEARNABILITY),
    "soft_pass": ("selection=soft", "teaching.score_source=pass"),
    "hard": ("selection=hard", "teaching.score_source=training"),
    "soft": ("selection=soft", "teaching.score_source=training"),
}
# What runs without --methods: issue 12's comparison (hard and soft with loss scores were measured in issue 11).
DEFAULT_METHODS = ("full", "random", "prune", "soft_learn", "hard_learn", "soft_pass")
# Validation only at the end and no periodic checkpoints: both cost wall time that is not training. No loader
# workers: on 2 cores they compete with the training process (measured: a many_epochs full run took 136 s with 2
# workers, 37 s without).
COMMON = ("trainer.val_every_epochs=0", "checkpoint.every_epochs=0", "checkpoint.keep_last=1",
          "trainer.progress_bar=false", "data.num_workers=0")
TASKS = list(DOWNSTREAM_TASKS)
ARGUMENTS = ("regimes", "methods", "budgets", "seeds", "overrides", "reference_only", "finetune")


class BadInput(Exception):
    """Bad arguments found after parsing: a budget too small for the plan, an --out holding another benchmark."""


@dataclass(frozen=True)
class Run:
    regime: str
    seed: int
    budget: float
    method: str
    epochs: int
    overrides: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"seed{self.seed}_b{self.budget}_{self.method}"


def compose_train(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "attent_vision" / "conf" / "train"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def run_pretraining(overrides: list[str], run_dir: Path) -> dict:
    """The real run: train.py's config with these overrides, pretrained (and fine-tuned) into ``run_dir``."""
    from attent_vision.cli.entry import pretrain_job

    cfg = compose_train(overrides)
    validate_train_config(cfg)
    return pretrain_job(cfg, run_dir)


def prepare_data(overrides: list[str]) -> None:
    """Generate the embedded data of a regime (and the downstream data when it fine-tunes)."""
    from attent_vision.pretraining.builders import dataset_root

    cfg = compose_train(overrides)
    dataset_root(cfg)
    if cfg.downstream.tasks:
        from attent_vision.data.downstream.embedded import ensure_synthetic_downstream

        ensure_synthetic_downstream()


def run_overrides(args, regime: str, method: str, seed: int, epochs: int, finetune: bool) -> tuple[str, ...]:
    tasks = (f"downstream.tasks=[{','.join(TASKS)}]",) if finetune else ()
    return (*REGIMES[regime].overrides, *METHODS[method], *COMMON, f"experiment_name=frontier_{method}",
            f"trainer.seed={seed}", f"trainer.epochs={epochs}", *tasks, *args.overrides)


def budgets_of(args, method: str) -> list[float]:
    return [1.0] if method in args.reference_only else args.budgets


def plan_runs(args) -> tuple[list[Run], dict]:
    """Every run in order, and what each regime is (from its composed config). Each (regime, method) config is
    composed and validated here and each budget checked against the plan, so bad input fails before any run."""
    runs, regimes = [], {}
    for regime in args.regimes:
        ref = REGIMES[regime].reference_epochs
        epochs = {b: round(b * ref) for b in args.budgets}
        for b, e in epochs.items():
            twin = next((o for o in args.budgets if o < b and epochs[o] == e), None)
            if twin is not None:
                raise BadInput(f"budgets {twin} and {b} both give {e} epochs in regime {regime} ({ref} reference "
                               "epochs); drop one")
        for method in args.methods:
            try:
                cfg = compose_train(list(run_overrides(args, regime, method, 0, ref, False)))
                validate_train_config(cfg)
            except (UserError, HydraException, OmegaConfBaseException) as e:
                raise BadInput(f"regime {regime}, method {method}: {' '.join(str(e).split())}") from None
            strategy = STRATEGIES[cfg.selection.strategy]
            minimum = cfg.teaching.total_cycles + 1 if strategy.trains_on_subsets and strategy.cyclic else 1
            for b in budgets_of(args, method):
                if epochs[b] < minimum:
                    why = (f"trains on subsets and needs teaching.total_cycles + 1 = {minimum}" if minimum > 1
                           else "needs at least 1")
                    raise BadInput(f"budget {b} gives {epochs[b]} epochs in regime {regime} ({ref} reference "
                                   f"epochs), but method {method} {why}; use budgets of at least {minimum / ref:.3g}")
        regimes[regime] = {"scenes": OmegaConf.select(cfg, "data.synthetic.num_train"), "model": cfg.model.name,
                           "batch_size": cfg.trainer.batch_size, "total_cycles": cfg.teaching.total_cycles,
                           "reference_epochs": ref, "epochs": {str(b): e for b, e in epochs.items()}}
        for seed in args.seeds:
            for b in args.budgets:
                for method in args.methods:
                    if b in budgets_of(args, method):
                        overrides = run_overrides(args, regime, method, seed, epochs[b], args.finetune and b == 1.0)
                        runs.append(Run(regime, seed, b, method, epochs[b], overrides))
    return runs, regimes


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
    t = result["time_s"]
    downstream = {DOWNSTREAM_TASKS[task].column: 100 * downstream_metric(result, task)
                  for task in TASKS if task in (result.get("downstream") or {})}
    return {"wall_s": training_wall(result), "total_s": t["total"], "eval_s": t["eval"], "scoring_s": t["scoring"],
            "val_loss": result["final"]["val_loss"], "samples_seen": result["samples_seen"],
            "device": (result.get("setting") or {}).get("device"),
            "selections": selection_numbers(result.get("selections", [])),
            "downstream": {k: None if math.isnan(v) else v for k, v in downstream.items()}}


def run_benchmark(args, out: Path, run_one=run_pretraining, prepare=prepare_data) -> tuple[dict, dict]:
    """Run (or reuse) every run of the plan; returns per regime {(seed, budget, method): run numbers}, and what
    each regime is. ``run_one(overrides, run_dir) -> results dict`` runs one configuration; ``prepare(overrides)``
    generates a regime's data before its first run, so that no run is charged for it."""
    plan, regimes = plan_runs(args)
    check_out(out, {k: getattr(args, k) for k in ARGUMENTS})
    numbers, prepared = {regime: {} for regime in args.regimes}, set()
    for i, run in enumerate(plan, 1):
        folder = out / run.regime / run.name
        finetunes = args.finetune and run.budget == 1.0
        result = reusable(folder, finetunes)
        if result is None:
            if run.regime not in prepared:
                prepare(list(run_overrides(args, run.regime, "full", run.seed, run.epochs, args.finetune)))
                prepared.add(run.regime)
            log.info("[%d/%d] regime %s, seed %d, budget %s (%d epochs), method %s", i, len(plan), run.regime,
                     run.seed, run.budget, run.epochs, run.method)
            result = run_one(list(run.overrides), folder)
            if not complete(result, finetunes):
                status = result.get("status")
                why = "completed without its downstream results" if status == COMPLETED else f"ended {status}"
                raise SystemExit(f"frontier.py: run {folder} {why} (see the log above and its results.json); "
                                 "rerun the same command: finished runs are reused and this one runs again")
        numbers[run.regime][(run.seed, run.budget, run.method)] = {**run_numbers(result), "run_dir": str(folder),
                                                                   "epochs": run.epochs}
    return numbers, regimes


NOTES = ("Wall time excludes periodic validation. Each seed is compared with its own full-data run at budget 1.0 "
         "(b=1). Time to full's loss: along the method's frontier through its budgets (linear between them), as a "
         "fraction of full's wall; \"<=\" when the smallest budget already got there, \"never\" when no budget did. "
         "Downstream metrics in percent.\n")


def write_outputs(args, out: Path, numbers: dict, regimes: dict, command: str) -> str:
    """summary.json, summary.md and one plot per regime; returns the tables (Markdown) for the console."""
    date = time.strftime("%Y-%m-%d %H:%M")
    devices = sorted({str(n["device"]) for runs in numbers.values() for n in runs.values() if n["device"]})
    machine = f"{os.cpu_count()} CPU cores, {platform.platform()}; device {', '.join(devices) or 'unknown'}"
    summaries, sections = {}, []
    columns = [spec.column for spec in DOWNSTREAM_TASKS.values()] if args.finetune else []
    for regime in args.regimes:
        info = regimes[regime]
        summary = summarise(numbers[regime], args.methods, args.budgets, args.seeds)
        summary["regime"] = info
        summary["runs"] = {f"seed{s}_b{b}_{m}": n for (s, b, m), n in numbers[regime].items()}
        summaries[regime] = summary
        title = (f"{regime}: {info['scenes']} scenes, {info['reference_epochs']} reference epochs, {info['model']}, "
                 f"seeds {' '.join(map(str, args.seeds))}")
        plot_frontier(summary, out / f"frontier_{regime}.png", title)
        epochs = ", ".join(f"{b}: {e}" for b, e in info["epochs"].items())
        sections.append(f"## {title}\n\nEpochs per budget: {epochs}; batch {info['batch_size']}.\n\n"
                        f"{to_markdown(summary, columns)}\n![frontier](frontier_{regime}.png)\n")
    write_json_atomic({"command": command, "date": date, "machine": machine,
                       "arguments": {k: getattr(args, k) for k in ARGUMENTS}, "regimes": summaries},
                      out / "summary.json")
    body = "\n".join(sections)
    (out / "summary.md").write_text(f"# Time-to-quality frontier\n\n`{command}`\n\n{date}; {machine}.\n\n{NOTES}\n"
                                    f"{body}")
    return body


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="frontier.py", description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(DEFAULT_METHODS), metavar="METHOD",
                   help=f"of {', '.join(METHODS)} (default: {', '.join(DEFAULT_METHODS)}); full is required")
    p.add_argument("--reference-only", nargs="*", choices=list(METHODS), default=["soft_pass"], metavar="METHOD",
                   help="methods run at budget 1.0 only (default: soft_pass)")
    p.add_argument("--budgets", type=float, nargs="+", default=[0.5, 0.75, 1.0, 1.5],
                   help="fractions of the reference epochs; must include 1.0")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--regimes", nargs="+", choices=list(REGIMES), default=list(REGIMES), metavar="REGIME",
                   help=f"of {', '.join(REGIMES)} (default: both)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default outputs/benchmarks/frontier_<date>)")
    p.add_argument("--finetune", action="store_true", help="fine-tune the budget-1.0 runs on the downstream tasks")
    p.add_argument("overrides", nargs="*", help="train.py overrides applied last to every run")
    return p


def check_args(parser: argparse.ArgumentParser, args) -> None:
    """Argument errors as one line each (parser.error), before anything is composed or run."""
    if any(not math.isfinite(b) or b <= 0 for b in args.budgets):
        parser.error(f"--budgets must be positive fractions of the reference epochs, got {args.budgets}")
    for name in ("budgets", "seeds", "methods", "regimes"):
        values = getattr(args, name)
        if len(set(values)) < len(values):
            parser.error(f"--{name} has duplicates: {values}")
    if 1.0 not in args.budgets:
        parser.error(f"--budgets must include 1.0 (the full-data run at 1.0 is the reference), got {args.budgets}")
    if any(s < 0 for s in args.seeds):
        parser.error(f"--seeds must be >= 0, got {args.seeds}")
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
        numbers, regimes = run_benchmark(args, out, run_one, prepare)
    except BadInput as e:
        parser.error(str(e))
    except KeyboardInterrupt:
        raise SystemExit(f"frontier.py: interrupted; finished runs are kept in {out}: rerun the same command "
                         "to continue") from None
    tables = write_outputs(args, out, numbers, regimes, "python benchmarks/frontier.py " + shlex.join(argv))
    print(tables)
    print(f"wrote {out}/summary.md, summary.json and frontier_<regime>.png")


if __name__ == "__main__":
    main()
