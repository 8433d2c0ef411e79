"""Score repeatability: does scoring a sample again give about the same rank, for every score option?

A score can only guide selection if it repeats. For each trained run (a train.py run folder with pretrained.pth)
and each score option, this measures every chosen training sample's score twice with the trained model, under
independent draws (other token masks; other crops and flips where the view augments), and compares the two
measurements: Spearman's rank correlation rho, and the overlap of their top-20% sets (0.20 by chance, 1 when they
agree). The model is in evaluation mode under torch.inference_mode, at the run's precision (fp32 on the CPU).

    python benchmarks/score_repeatability.py --run outputs/default/2026-11-28_10-00-00 --out repeat/   # all options
    python benchmarks/score_repeatability.py --run RUN_A RUN_B --samples 512 --options fixed_K1 fixed_K4
    python benchmarks/score_repeatability.py --train --out repeat/      # train the two runs below, then measure
    python benchmarks/score_repeatability.py --train photo_run --photo-epochs 160 --out repeat160/   # one of them
    python benchmarks/score_repeatability.py --make-photos /tmp/photos  # only write the real-image dataset

A score is the sample's training objective (the weighted sum of its per-task losses, as ``teaching.score=loss``
ranks it), or with top-q the same weighted sum of each task's mean over its q = 0.25 highest-loss hidden patches
(``teaching.score_top_q``; models/losses.py top_patches_mean). Each option (a row; ``OPTIONS`` below) is a view, a
number of draws K, a reduction, and whether all samples share one mask pattern per draw: measurement A is the mean
over draws 0..K-1, measurement B the mean over draws K..2K-1 (K=1: draw 0 against draw 1). The views:

    fixed      the deterministic centre view, per-sample masks (the paper's scoring pass; validation's view)
    augmented  random-resized crops, flips and masks from the training distribution, on the noisy-scoring stream:
               what free training-step scores and their refreshes see (teaching.score_source=training)

All draws of one view use one epoch (0): the augmented view's draws differ by their draw number only, as two
refreshes of one epoch would. Learnability rows score loss minus the loss of the reference model
(pretraining/reference.py: the learner's architecture trained on a holdout of the training split to a plateau,
cached in the data cache), both models measured on the same draws; when they are asked for, the holdout is left out
of the scored samples of every row, so all rows rank the same samples.

``--train`` trains, one after the other, the runs of docs/benchmarks.md into ``<out>``: the default ``python
train.py`` (``<out>/default_run``) and MultiMAE-pico at 32 px, rgb only, on crops of the photos that ship inside the
scikit-image wheel (``<out>/photo_run``, photos in ``--make-photos`` or ``<out>/photos``); a run folder that already
holds pretrained.pth is reused. Results: ``<out>/repeatability.md`` (a table, one row per option, a column per run)
and ``<out>/repeatability.json``.
"""

import argparse
import dataclasses
import logging
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]  # the package, and photo_dataset beside this file

from photo_dataset import PhotoDatasetError, make_photo_dataset

from attent_vision.errors import UserError

log = logging.getLogger("score_repeatability")

TOP_Q = 0.25  # the top-q rows: the mean of each task's highest-loss quarter of hidden patches
EPOCH = 0  # the epoch of every key: draws differ by their draw number alone
TRAINED_RUNS = ("default_run", "photo_run")  # what --train trains (train_commands)


@dataclasses.dataclass(frozen=True)
class ScoreOption:
    """One row: how a score is measured (A: draws 0..K-1 averaged, B: draws K..2K-1)."""

    view: str  # fixed | augmented
    draws: int  # K
    top_q: bool = False  # the top-q reduction instead of the plain mean
    shared: bool = False  # one mask pattern per draw for all samples (teaching.shared_mask)
    learnability: bool = False  # loss minus the reference model's loss

    @property
    def measurement(self) -> tuple[str, bool]:
        """The (view, shared) pass whose draws this option averages."""
        return self.view, self.shared

    def describe(self) -> str:
        view = {"fixed": "fixed view", "augmented": "augmented view"}[self.view]
        parts = [("learnability (loss - reference loss), " if self.learnability else "loss, ") + view,
                 f"{self.draws} draw{'s' if self.draws > 1 else ''} per measurement"]
        if self.top_q:
            parts.append(f"top-{TOP_Q:g} patches")
        if self.shared:
            parts.append("one mask pattern per draw for all samples")
        return ", ".join(parts)


OPTIONS = {
    "fixed_K1": ScoreOption("fixed", 1),  # the paper's scoring pass; B differs by its mask seed
    "fixed_K4": ScoreOption("fixed", 4),
    "augmented_K1": ScoreOption("augmented", 1),  # a training step's / refresh's score
    "augmented_K4": ScoreOption("augmented", 4),
    "fixed_K1_topq": ScoreOption("fixed", 1, top_q=True),
    "fixed_K4_topq": ScoreOption("fixed", 4, top_q=True),
    "fixed_K1_shared": ScoreOption("fixed", 1, shared=True),
    "fixed_K4_shared_topq": ScoreOption("fixed", 4, top_q=True, shared=True),
    "augmented_K4_topq": ScoreOption("augmented", 4, top_q=True),
    "learnability_fixed_K1": ScoreOption("fixed", 1, learnability=True),
    "learnability_fixed_K4": ScoreOption("fixed", 4, learnability=True),
}


# ------------------------------------------------------------------------------------------------ the trained run
def run_config(run_dir: Path):
    """The run's resolved config (.hydra/config.yaml), with the teaching keys it predates filled in with today's
    defaults (a run trained before an option existed trained without it) and no ``model.init_from`` (the weights
    come from pretrained.pth)."""
    from omegaconf import OmegaConf

    from attent_vision.teaching.settings import TeachingConfig

    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        raise UserError(f"--run {run_dir}: no .hydra/config.yaml; give a folder that train.py wrote")
    saved = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    saved["teaching"] = {**dataclasses.asdict(TeachingConfig()), **saved.get("teaching", {})}
    saved["model"]["init_from"] = None
    return OmegaConf.create(saved)


def with_keys(cfg, **updates):
    """A copy of ``cfg`` with dotted keys set."""
    from omegaconf import OmegaConf

    out = cfg.copy()
    for key, value in updates.items():
        OmegaConf.update(out, key, value, force_add=True)
    return out


def load_trained_model(cfg, run_dir: Path, device: torch.device) -> torch.nn.Module:
    """The run's pretrained.pth in its model, in evaluation mode."""
    from attent_vision.models.convert import extract_state_dict, read_checkpoint
    from attent_vision.pretraining.builders import build_pretrain_model

    weights = run_dir / "pretrained.pth"
    if not weights.is_file():
        raise UserError(f"--run {run_dir}: no pretrained.pth (the run has not finished); let it finish or give "
                        "another run folder")
    model = build_pretrain_model(cfg)
    try:
        model.load_state_dict(extract_state_dict(read_checkpoint(weights), source=str(weights)))
    except RuntimeError as e:
        raise UserError(f"{weights} does not fit the model of {run_dir}/.hydra/config.yaml: "
                        f"{str(e).splitlines()[0]}") from None
    return model.to(device).eval()


def run_settings(cfg, run_dir: Path, num_samples: int) -> dict:
    """What the table says about a run: its model, data and training."""
    from attent_vision.engine.results import read_results

    m, d = cfg.model, cfg.data
    settings = {"model": m.name, "image_size": m.image_size, "domains": "+".join(m.in_domains),
                "data": f"{d.name} {d.root}" if d.root else d.name, "training_samples": num_samples,
                "epochs": cfg.trainer.epochs, "selection": cfg.selection.strategy, "seed": cfg.trainer.seed}
    try:
        results = read_results(run_dir / "results.json")
        settings.update(epochs_completed=results.get("epochs_completed"), status=results.get("status"),
                        final_val_loss=(results.get("final") or {}).get("val_loss"))
    except (OSError, ValueError):
        pass  # a run folder without results.json still has weights and a config to measure
    return settings


# -------------------------------------------------------------------------------------------- the measurements
def scored_views(cfg, model, learnability: bool) -> dict:
    """The views the options need, from the run's own builder (its folder, image size, seed, crops and masks): the
    fixed, augmented and shared-mask views of the training split, and with ``learnability`` the reference model's
    holdout. With learnability the training views leave the holdout out (item i is folder sample
    ``view.folder_index(i)``), so every row scores the samples the reference model never saw."""
    from attent_vision.data.pretrain.views import PretrainView
    from attent_vision.pretraining.builders import build_pretrain_views, dataset_root
    from attent_vision.seeds import STREAM_NOISY_SCORING

    built = build_pretrain_views(cfg, model, dataset_root(cfg))
    base = built["train"]

    def variant(augment: bool, shared: bool) -> PretrainView:
        # The stream serves the augmented view (the noisy-scoring draws refreshes take); the fixed view has its own.
        return PretrainView(base.folder, image_size=base.image_size, augment=augment, seed=base.seed,
                            mask_spec=base.mask_spec, crop_scale=base.crop_scale, crop_ratio=base.crop_ratio,
                            hflip_prob=base.hflip_prob, semseg_stride=base.semseg_stride, stream=STREAM_NOISY_SCORING,
                            shared_masks=shared, subset=base.subset)

    views = {("fixed", False): variant(False, False), ("fixed", True): variant(False, True),
             ("augmented", False): variant(True, False), ("augmented", True): variant(True, True)}
    if learnability:
        views["reference"] = built["reference"]
    return views


def sample_scores(model, loss_fn, batch: dict, device: torch.device, precision: str):
    """(objective B, top-q score B) of one batch, as training computes them (pretraining/trainer.py _forward)."""
    from attent_vision.engine.loaders import to_device
    from attent_vision.engine.runtime import autocast
    from attent_vision.pretraining.builders import MODALITIES

    inputs = to_device(batch, device, MODALITIES)
    with autocast(precision, device):
        preds, masks = model(inputs, task_masks=batch["masks"])
    losses = loss_fn(preds, inputs, masks)
    top = sum(loss_fn.weights[t] * tl.score * tl.valid for t, tl in losses.items())
    return loss_fn.objective(losses), top


@torch.inference_mode()
def measure_draws(model, loss_fn, view, indices: list[int], draws: int, batch_size: int, device: torch.device,
                  precision: str, workers: int = 0) -> dict[str, torch.Tensor]:
    """Scores of the view's items ``indices`` (M) under draws 0..draws-1: {'loss': D x M, 'topq': D x M} (float64;
    NaN for a sample that failed to load with data.skip_bad_samples)."""
    from torch.utils.data import DataLoader

    from attent_vision.data.skipping import collate_skipping_bad

    row = {index: r for r, index in enumerate(indices)}
    out = {name: torch.full((draws, len(indices)), math.nan, dtype=torch.float64) for name in ("loss", "topq")}
    plan = [(draw, indices[start:start + batch_size]) for draw in range(draws)
            for start in range(0, len(indices), batch_size)]
    keys = [[(i, EPOCH, 1.0, draw) for i in chunk] for draw, chunk in plan]
    loader = DataLoader(view, batch_sampler=keys, collate_fn=collate_skipping_bad, num_workers=workers)
    for (draw, _), batch in zip(plan, loader):
        if "index" not in batch:  # every sample of the batch failed to load
            continue
        rows = [row[int(i)] for i in batch["index"]]
        objective, top = sample_scores(model, loss_fn, batch, device, precision)
        out["loss"][draw, rows] = objective.double().cpu()
        out["topq"][draw, rows] = top.double().cpu()
    return out


def option_measurements(option: ScoreOption, learner: dict, reference: dict | None) -> tuple[torch.Tensor, ...]:
    """Measurements A and B (M each) of ``option`` from the per-draw scores of its view."""
    field, k = ("topq" if option.top_q else "loss"), option.draws

    def mean(scores: dict, first: int) -> torch.Tensor:
        return scores[field][first:first + k].mean(0)

    a, b = mean(learner, 0), mean(learner, k)
    if option.learnability:
        a, b = a - mean(reference, 0), b - mean(reference, k)
    return a, b


def train_reference(cfg, view, device: torch.device):
    """The run's learnability reference model (pretraining/reference.py), trained on ``view`` (in a run folder of
    its own, under the system's temporary folder) or from the cache; its precision is the run's."""
    from attent_vision.engine.distributed import DistEnv
    from attent_vision.pretraining.reference import load_or_train_reference_model

    with tempfile.TemporaryDirectory(prefix="attent_reference_") as folder:  # its run folder: checkpoints, not kept
        model, _, info = load_or_train_reference_model(cfg, view, Path(folder) / "reference", DistEnv(device=device))
    return model.eval(), info


def measure_run(run_dir: Path, option_names: list[str], samples: int | None, seed: int, device: torch.device,
                batch_size: int | None, workers: int) -> dict:
    """Every option's agreement on one run: {'run', 'settings', 'samples', 'options': {name: agreement}}."""
    from attent_vision.engine.runtime import resolve_precision
    from attent_vision.pretraining.builders import build_loss
    from attent_vision.teaching.repeatability import agreement

    started = time.perf_counter()
    options = {name: OPTIONS[name] for name in option_names}
    learnability = any(o.learnability for o in options.values())
    cfg = run_settings_of = run_config(run_dir)
    # The views of a learnability run (holdout carved out); the reference's settings are the run's own.
    cfg = with_keys(cfg, **{"teaching.score_top_q": TOP_Q,
                            "teaching.score": "learnability" if learnability else "loss",
                            "selection.strategy": "soft" if learnability else cfg.selection.strategy})
    precision = resolve_precision(cfg.trainer.precision, device)
    model = load_trained_model(cfg, run_dir, device)
    loss_fn = build_loss(cfg, model)
    views = scored_views(cfg, model, learnability)
    view_size = len(views[("fixed", False)])
    count = view_size if samples is None else min(samples, view_size)
    indices = sorted(torch.randperm(view_size, generator=torch.Generator().manual_seed(seed))[:count].tolist())
    batch_size = batch_size or cfg.trainer.eval_batch_size

    # One pass per (view, shared) with as many draws as its options need (2K), reused by every option that reads it.
    needed: dict = {}
    for o in options.values():
        needed[o.measurement] = max(needed.get(o.measurement, 0), 2 * o.draws)
    learner = {}
    for measurement, draws in needed.items():
        t = time.perf_counter()
        learner[measurement] = measure_draws(model, loss_fn, views[measurement], indices, draws, batch_size, device,
                                             precision, workers)
        log.info("%s: %s view%s, %d draws of %d samples in %.1f s", run_dir.name, measurement[0],
                 " (shared masks)" if measurement[1] else "", draws, count, time.perf_counter() - t)
    reference, reference_info = {}, None
    if learnability:
        ref_model, reference_info = train_reference(cfg, views["reference"], device)
        for o in options.values():
            if o.learnability and o.measurement not in reference:
                reference[o.measurement] = measure_draws(ref_model, loss_fn, views[o.measurement], indices,
                                                         needed[o.measurement], batch_size, device, precision,
                                                         workers)
    results = {}
    for name, o in options.items():
        a, b = option_measurements(o, learner[o.measurement], reference.get(o.measurement))
        results[name] = agreement(a, b)
    folder_size = len(views[("fixed", False)].folder)
    return {"run": str(run_dir), "settings": run_settings(run_settings_of, run_dir, folder_size), "samples": count,
            "holdout": folder_size - view_size, "reference_model": reference_info,
            "seconds": round(time.perf_counter() - started, 1), "options": results}


# ------------------------------------------------------------------------------------------------ the two runs
def train_commands(out: Path, photos: Path, photo_epochs: int) -> dict[str, list[str]]:
    """run name -> train.py arguments of the runs ``--train`` makes (docs/benchmarks.md)."""
    return {
        "default_run": ["train.py", f"hydra.run.dir={out / 'default_run'}"],
        "photo_run": ["train.py", "data=folder", f"data.root={photos}", "model=multimae_pico", "model.image_size=32",
                      "model.in_domains=[rgb]", "model.out_domains=[rgb]", f"trainer.epochs={photo_epochs}",
                      f"hydra.run.dir={out / 'photo_run'}"],
    }


def train_runs(out: Path, photos: Path, photo_epochs: int, names: list[str]) -> list[Path]:
    """Train the runs ``names`` of :func:`train_commands` one after the other (each uses every core); reuse
    finished ones."""
    runs = []
    for name, args in train_commands(out, photos, photo_epochs).items():
        if name not in names:
            continue
        run_dir = out / name
        if (run_dir / "pretrained.pth").is_file():
            log.info("%s: finished before, reused", run_dir)
        else:
            log.info("training %s: python %s", run_dir, " ".join(args))
            done = subprocess.run([sys.executable, *args], cwd=REPO, check=False)
            if done.returncode != 0:
                raise UserError(f"python {' '.join(args)} failed (exit status {done.returncode}); see "
                                f"{run_dir}/train.log, fix it and rerun (finished runs are reused)")
        runs.append(run_dir)
    return runs


# ------------------------------------------------------------------------------------------------------ output
def cell(result: dict) -> str:
    if result.get("spearman") is None:
        return "n/a"
    return f"{result['spearman']:.2f} ({result['top_overlap']:.2f})"


def to_markdown(report: dict) -> str:
    runs = report["runs"]
    labels = [Path(r["run"]).name for r in runs]
    if len(set(labels)) < len(labels):  # two folders of one name: number them
        labels = [f"{i + 1}: {label}" for i, label in enumerate(labels)]
    chance = report["top_fraction"]
    lines = ["# Score repeatability", "",
             ("Two measurements of each sample's score by the trained model, under independent draws: Spearman rho "
              f"(overlap of the two top-{chance:.0%} sets; {chance:.2f} is chance)."),
             "", "| option | " + " | ".join(labels) + " | what |", "|---" * (len(labels) + 2) + "|"]
    for name, option in report["options"].items():
        lines.append(f"| {name} | " + " | ".join(cell(r["options"][name]) for r in runs) + f" | {option} |")
    lines += ["", "Runs:", ""]
    for label, r in zip(labels, runs):
        s = r["settings"]
        line = (f"- {label} ({r['run']}): {s['model']}, {s['image_size']} px, {s['domains']}, data {s['data']} "
                f"({s['training_samples']} training samples, {r['samples']} scored"
                + (f", {r['holdout']} held out for the reference model" if r["holdout"] else "")
                + f"), {s['epochs']} epochs")
        if s.get("epochs_completed") is not None:
            line += f" ({s['epochs_completed']} completed)"
        line += f", selection {s['selection']}, seed {s['seed']}; measured in {r['seconds']:.0f} s"
        if r.get("reference_model"):
            ref = r["reference_model"]
            line += f"; reference model: {ref.get('steps')} steps, stopped by {ref.get('stopped')}"
        lines.append(line)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="score_repeatability.py", description=__doc__.splitlines()[0])
    p.add_argument("--run", nargs="+", type=Path, default=[], metavar="DIR", help="train.py run folders to measure")
    p.add_argument("--samples", type=int, default=None, metavar="N",
                   help="training samples scored (a seeded random choice; default: all)")
    p.add_argument("--options", nargs="+", default=list(OPTIONS), metavar="NAME",
                   help=f"score options, rows of the table (default: all): {', '.join(OPTIONS)}")
    p.add_argument("--out", type=Path, default=None, help="where repeatability.md and .json go (and --train's runs)")
    p.add_argument("--seed", type=int, default=0, help="which samples --samples takes")
    p.add_argument("--batch-size", type=int, default=None, help="scoring batch (default: the run's eval batch)")
    p.add_argument("--workers", type=int, default=0, help="data loader workers (default 0: in this process)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available) | cpu | cuda | cuda:N")
    p.add_argument("--train", nargs="*", choices=TRAINED_RUNS, default=None, metavar="RUN",
                   help=f"first train these runs into --out, then measure them ({' '.join(TRAINED_RUNS)}; "
                   "none named: both)")
    p.add_argument("--photo-epochs", type=int, default=10, help="--train: epochs of the photo run (default 10)")
    p.add_argument("--make-photos", type=Path, default=None, metavar="DIR",
                   help="write the scikit-image photo dataset into DIR (--train: default <out>/photos)")
    p.add_argument("--photo-count", nargs=2, type=int, default=[512, 64], metavar=("TRAIN", "VAL"),
                   help="crops in the photo dataset's train and val splits (default 512 64)")
    return p


def check_args(parser: argparse.ArgumentParser, args) -> None:
    unknown = [name for name in args.options if name not in OPTIONS]
    if unknown:
        parser.error(f"unknown option {', '.join(unknown)}; choose from {', '.join(OPTIONS)}")
    if args.samples is not None and args.samples < 3:
        parser.error(f"--samples {args.samples}: a rank correlation needs at least 3 samples")
    if args.train == []:  # --train alone: both runs
        args.train = list(TRAINED_RUNS)
    if args.train and args.out is None:
        parser.error("--train needs --out (the runs are trained into it)")
    if not (args.run or args.train or args.make_photos):
        parser.error("nothing to do: give --run DIR, --train --out DIR, or --make-photos DIR")
    if (args.run or args.train) and args.out is None:
        parser.error("--out DIR is needed for repeatability.md and repeatability.json")
    if args.photo_epochs < 1:
        parser.error(f"--photo-epochs {args.photo_epochs}: at least 1")


def main(argv: list[str] | None = None) -> dict | None:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        photos = args.make_photos or (args.out / "photos" if "photo_run" in (args.train or []) else None)
        if photos is not None:
            written = make_photo_dataset(photos, *args.photo_count)
            log.info("photo dataset: %d training and %d validation crops in %s", written["train"], written["val"],
                     photos)
        runs = list(args.run)
        if args.train:
            runs += train_runs(args.out.resolve(), (photos or args.out / "photos").resolve(), args.photo_epochs,
                               args.train)
        if not runs:
            return None
        from attent_vision.engine.distributed import pick_device

        device = pick_device(args.device, 0)
        report = {"top_fraction": None, "top_q": TOP_Q,
                  "options": {name: OPTIONS[name].describe() for name in args.options}, "runs": []}
        for run_dir in runs:
            measured = measure_run(Path(run_dir), args.options, args.samples, args.seed, device, args.batch_size,
                                   args.workers)
            report["runs"].append(measured)
        from attent_vision.engine.results import write_json_atomic
        from attent_vision.teaching.repeatability import TOP_FRACTION

        report["top_fraction"] = TOP_FRACTION
        args.out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(report, args.out / "repeatability.json")
        markdown = to_markdown(report)
        (args.out / "repeatability.md").write_text(markdown)
        print(markdown)
        return report
    except (UserError, PhotoDatasetError) as e:
        sys.exit(f"score_repeatability.py: {e}")


if __name__ == "__main__":
    main()
