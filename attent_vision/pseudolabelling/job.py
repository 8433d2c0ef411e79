"""One labelling invocation: list the input, skip what is done, label the rest batch by batch on this rank's share,
write the files, and (rank 0) record the invocation in the manifest and print the summary.

A batch is run whole whenever any of its images lacks an output, so its composition (and so every value a model
computes for it) is the same in a first run, a resumed run and a run on any number of ranks; only the missing
files are written. An interrupted run loses at most the batch in flight.

The manifest is written before the first batch (status ``running``), so that even a run killed in its first minute
has told the output folder which models its files come from, and again at the end. SIGTERM/SIGINT (a scheduler's
preemption, Ctrl-C) stop after the current batch with status ``interrupted`` and exit status 128 + n. A rank that
meets an error (a bad image under ``on_bad_image=error``, a full disk) finishes its loop early and the ranks agree
on the outcome before anyone exits: no rank waits for one that is gone.
"""

import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ..engine.bars import console_logs_above_bars, progress_bar, show_bars
from ..engine.distributed import DistEnv, all_gather_objects, init_distributed
from ..engine.preemption import StopRequested
from ..errors import DataError, UserError
from ..storage import reading
from .decoding import BAD_IMAGE_HINT, decoded_batches, stack_inputs
from .inputs import InputImage, batches_of_rank, list_input
from .labellers import import_transformers, load_labeller
from .manifest import check_same_output, read_manifest, resolved_revisions_differ, updated_manifest, write_manifest
from .outputs import OutputLayout

log = logging.getLogger("attent_vision")

LOG_EVERY_S = 60.0  # a progress line this often when no bar shows (logs, SLURM)
RUNNING, COMPLETED, STOPPED, INTERRUPTED, FAILED = "running", "completed", "stopped", "interrupted", "failed"
COUNTS = ("written", "skipped_existing", "failed", "batches_run", "copied_instead_of_linked")
SETTINGS = ("input", "output", "split", "val_split", "val_fraction", "tasks", "rgb", "batch_size", "precision",
            "max_images")


def label_folder(cfg: DictConfig) -> dict:
    """Label ``cfg.input`` into ``cfg.output`` (validated config); returns this invocation's record."""
    import_transformers()  # a missing extra is the first thing to say, before any listing or process group
    started, clock = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.perf_counter()
    dist = init_distributed(cfg.device)
    source, output = Path(cfg.input).expanduser().resolve(), Path(cfg.output).expanduser().resolve()
    for task in ("depth", "semseg"):  # a local model folder recorded and compared as one absolute path
        if Path(cfg[task].model).expanduser().exists():
            cfg[task].model = str(Path(cfg[task].model).expanduser().resolve())
    settings = {key: OmegaConf.to_container(cfg)[key] for key in SETTINGS} | {"input": str(source),
                                                                               "output": str(output)}
    with reading(source, "input"):
        listing = list_input(source, cfg.split, cfg.val_split, cfg.val_fraction)
    images = listing.images[: cfg.max_images] if cfg.max_images else listing.images
    tasks = list(cfg.tasks)
    manifest = read_manifest(output)
    check_same_output(manifest, {t: OmegaConf.to_container(cfg[t]) for t in tasks}, settings, output)
    labellers = {task: load_labeller(task, cfg[task], dist.device, precision_of(cfg.precision, dist.device))
                 for task in tasks}
    models = {task: labeller.description for task, labeller in labellers.items()}
    for task in resolved_revisions_differ(manifest, models):
        log.warning("%s.model %s resolved to another hub commit than the labels already in %s were made with",
                    task, cfg[task].model, output)
    invocation = {"started": started, "status": RUNNING, "images": len(images), "ignored": len(listing.ignored),
                  "world_size": dist.world_size}
    if dist.is_main:
        output.mkdir(parents=True, exist_ok=True)
        write_manifest(output, updated_manifest(manifest, models, settings, invocation))

    layout = OutputLayout(output, tasks, cfg.rgb)
    counts = run_batches(cfg, dist, images, layout, labellers)
    everyone = all_gather_objects(counts, dist)
    errors = [c["error"] for c in everyone if c["error"]]
    stopped_by = next((c["stopped_by"] for c in everyone if c["stopped_by"]), None)
    status = FAILED if errors else INTERRUPTED if stopped_by else STOPPED if any(c["stopped"] for c in everyone) \
        else COMPLETED
    invocation |= {key: sum(c[key] for c in everyone) for key in COUNTS}
    invocation |= {"status": status, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "failed_files": [f for c in everyone for f in c["failed_files"]],
                   "time_s": round(time.perf_counter() - clock, 3)}
    if errors:
        invocation["error"] = errors[0]
    if dist.is_main:
        write_manifest(output, updated_manifest(manifest, models, settings, invocation))
        report(invocation, listing.ignored, output, cfg)
    if errors:
        raise (RuntimeError if any(c["bug"] for c in everyone) else UserError)(errors[0])
    return {"status": status, "exit_code": 128 + stopped_by if stopped_by else 0, "pseudolabel": invocation}


def precision_of(precision: str, device: torch.device) -> torch.dtype:
    """bf16 where asked, or by default on a GPU that has it (Ampere and later); fp32 otherwise."""
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def run_batches(cfg: DictConfig, dist: DistEnv, images: list[InputImage], layout: OutputLayout,
                labellers: dict) -> dict:
    """Label this rank's batches that are not done; returns its counts (and the error that ended it, if any)."""
    mine = batches_of_rank(len(images), cfg.batch_size, dist.rank, dist.world_size)
    todo = [b for b in mine if not all(layout.is_done(images[i]) for i in b)]
    counts = {"written": 0, "skipped_existing": sum(len(b) for b in mine) - sum(len(b) for b in todo),
              "failed": 0, "failed_files": [], "batches_run": 0, "stopped": False, "stopped_by": None, "error": None,
              "bug": False}
    if counts["skipped_existing"]:
        log.info("%d images already labelled in %s: skipped", counts["skipped_existing"], layout.root)
    resolutions = {task: cfg[task].resolution for task in labellers}
    show = show_bars(cfg.progress_bar, dist.is_main)
    total, done, last_log, start = sum(len(b) for b in todo), 0, time.perf_counter(), time.perf_counter()
    stop = StopRequested(unit="batch (rerun the same command to continue)", saves=None)
    stop.install()
    try:
        with console_logs_above_bars(show), progress_bar(total=total, desc="labelling", show=show, unit="img") as bar:
            for items in decoded_batches(images, todo, resolutions, cfg.num_workers):
                label_batch(items, images, layout, labellers, cfg.on_bad_image, counts)
                counts["batches_run"] += 1
                done += len(items)
                bar.update(len(items))
                if not show and dist.is_main and time.perf_counter() - last_log >= LOG_EVERY_S:
                    last_log = time.perf_counter()
                    log_progress(done, total, last_log - start)
                if stop.pending is not None and stop.act():
                    counts["stopped_by"] = stop.stopped_by
                    break
                if cfg.stop_after_batches and counts["batches_run"] >= cfg.stop_after_batches:
                    counts["stopped"] = counts["batches_run"] < len(todo)
                    break
    except UserError as e:  # told to every rank before anyone exits (label_folder)
        counts["error"] = str(e)
    except Exception as e:
        if not dist.distributed:
            raise  # a bug: its traceback, as anywhere else
        log.exception("rank %d failed", dist.rank)  # its traceback here; the other ranks learn of it and stop too
        counts["error"], counts["bug"] = f"rank {dist.rank} failed: {type(e).__name__}: {e}", True
    finally:
        stop.restore()
    counts["copied_instead_of_linked"] = layout.copied_instead_of_linked
    return counts


def label_batch(items: list[dict], images: list[InputImage], layout: OutputLayout, labellers: dict,
                on_bad_image: str, counts: dict) -> None:
    """Run every model on the batch's readable images and write the outputs that are missing."""
    readable = []
    for item in items:
        if "error" not in item:
            readable.append(item)
            continue
        if on_bad_image == "error":
            raise DataError(f"{item['error']}; {BAD_IMAGE_HINT}")
        log.warning("skipped an image: %s", item["error"])
        counts["failed"] += 1
        counts["failed_files"].append({"path": str(images[item["index"]].path), "error": item["error"]})
    pending = {item["index"] for item in readable if not layout.is_done(images[item["index"]])}
    counts["skipped_existing"] += len(readable) - len(pending)
    if not pending:
        return
    sizes = [item["size"] for item in readable]
    labels = {task: labeller.label(stack_inputs(readable, task), sizes) for task, labeller in labellers.items()}
    for position, item in enumerate(readable):
        if item["index"] in pending:
            layout.write(images[item["index"]], {task: maps[position] for task, maps in labels.items()})
            counts["written"] += 1


def log_progress(done: int, total: int, elapsed: float) -> None:
    rate = done / elapsed if elapsed > 0 else 0.0
    left = f"about {(total - done) / rate:.0f} s left" if rate > 0 else "time left unknown"
    log.info("labelled %d/%d images (%.1f img/s, %s)", done, total, rate, left)


def report(invocation: dict, ignored: list[Path], output: Path, cfg: DictConfig) -> None:
    """The summary lines of an invocation (rank 0)."""
    log.info("pseudo-labels for %d images: %d written, %d already there, %d failed; %d other files ignored; "
             "%.1f s; %s", invocation["images"], invocation["written"], invocation["skipped_existing"],
             invocation["failed"], len(ignored), invocation["time_s"], output)
    if invocation["failed"]:
        log.warning("%d image(s) could not be decoded and have no labels (listed in %s's failed_files); fix or "
                    "remove them and rerun to label them", invocation["failed"], output / "pseudolabel_manifest.json")
    if ignored:
        log.warning("%d file(s) are not .png/.jpg/.jpeg images and were not labelled (e.g. %s); convert them to PNG "
                    "to include them", len(ignored), ignored[0])
    if invocation["copied_instead_of_linked"]:
        log.info("%d rgb files were copied, not hard-linked (rgb=symlink avoids the copies)",
                 invocation["copied_instead_of_linked"])
    if invocation["status"] == STOPPED:
        log.info("stopped after %d batches as asked (stop_after_batches=%d); rerun the same command to continue",
                 invocation["batches_run"], cfg.stop_after_batches)
    elif invocation["status"] == INTERRUPTED:
        log.warning("stopped by a signal after %d batches; rerun the same command to continue",
                    invocation["batches_run"])
    elif invocation["status"] == COMPLETED:
        log.info("pretrain on it: python train.py data=folder data.root=%s%s", output,
                 "" if cfg.val_fraction > 0 else " data.val_split=null")
