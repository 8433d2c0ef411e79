"""Atomic checkpoints in the run folder, checked against their checksums, and finding the one to resume from.

Each checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed over its final
name: a crash or a kill while saving never leaves a half-written checkpoint, and older ones are only pruned after
the new one is in place. Files are named by optimizer step, so the newest is the one with the largest step.

A checkpoint's bytes can still change after it was written (a bad disk block, a copy gone wrong), and torch.load
reads them without a check: 64 flipped bytes inside a tensor load silently. The checksums are already in the file:
torch.save writes a zip archive whose every record (the pickle and each tensor's storage) carries the CRC-32 of
its bytes, computed as they are written. Loading reads every record and compares (``verify_checksums``); a
mismatch is an unreadable checkpoint, so a run falls back to the previous one. A SHA-256 sidecar was measured
first and rejected: on the default run (a 10 MiB checkpoint saved in ~70 ms) hashing the bytes added 22-29% to a
save, where the CRCs cost nothing extra. CRC-32 finds any error burst up to 32 bits and all but 2^-32 of the rest:
made for damage, not for a forger, which is the risk here. Padding between records is not covered (it is never
read). A file written with torch's ``compute_crc32`` off has no CRCs; it loads unchecked, with an INFO line.
"""

import logging
import re
import shutil
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ..atomic_files import atomic_write
from ..errors import CheckpointError, UnreadableCheckpoint
from ..models.convert import read_checkpoint
from ..storage import writing
from .run_identity import flatten, is_under

try:  # torch >= 2.6 can skip the CRCs (compute_crc32); earlier releases always write them
    from torch.utils.serialization import config as _serialization_config
except ImportError:  # pragma: no cover - depends on the torch release
    _serialization_config = None

CHECKPOINT_RE = re.compile(r"^step_(\d{8})\.pt$")
FORMAT_VERSION = 2  # 2: the shared loop core (typed progress, teacher counters, 1-based epochs)

log = logging.getLogger(__name__)


@contextmanager
def _with_checksums():
    """torch.save with the CRC-32 of every record, whatever a user set in torch's serialization config."""
    save = getattr(_serialization_config, "save", None)
    if save is None or getattr(save, "compute_crc32", True):
        yield
        return
    save.compute_crc32 = True
    try:
        yield
    finally:
        save.compute_crc32 = False


def verify_checksums(path: str | Path) -> bool | None:
    """Read every record of the checkpoint ``path`` and compare it with the CRC-32 stored beside it. True: all match;
    False: written without CRCs; None: not a zip archive (truncated, legacy or foreign: torch.load says what it is).
    A mismatch is an UnreadableCheckpoint naming the file and the record."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    with archive:
        records = [r for r in archive.infolist() if r.file_size]
        if not records or all(r.CRC == 0 for r in records):
            return False
        try:
            bad = archive.testzip()  # the first record whose bytes or header do not match, else None
        except Exception as e:  # noqa: BLE001 - a damaged archive fails in several ways
            bad = f"? ({type(e).__name__}: {e})"
    if bad is None:
        return True
    reason = f"its record {bad} does not match the checksum written with it"
    raise UnreadableCheckpoint(f"{path} is corrupt ({reason}): the file was changed or damaged after it was saved; "
                               "resume from an older step_*.pt (checkpoint.resume=<path>) or start a new run folder",
                               reason)


def atomic_torch_save(obj, path: Path) -> None:
    """torch.save to ``path`` (with its records' CRC-32s) via a temporary file and an atomic rename. A full disk or
    an unwritable folder is a StorageError naming ``path`` (storage.py); the temporary file is removed and an
    earlier ``path`` kept."""
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as f, _with_checksums():
            torch.save(obj, f)


def save_weights(path: Path, model: torch.nn.Module, config: dict) -> None:
    """A final weights file (``pretrained.pth``, ``finetuned.pth``): the model's weights and its config."""
    atomic_torch_save({"model": model.state_dict(), "config": config}, path)


def training_state(*, model, optimizer, scaler, progress: dict, cfg, device: torch.device, **extra) -> dict:
    """Everything a run resumes from: weights, optimiser and scaler state, progress, RNG states and the resolved
    config (to refuse resuming with different settings). ``extra`` adds stage-specific entries (e.g. the teacher)."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "progress": progress,
        "rng": {"cpu": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None},
        "config": OmegaConf.to_container(cfg, resolve=True),
        **extra,
    }


def restore_rng(state: dict, device: torch.device) -> None:
    """Put back the RNG states saved by :func:`training_state` (the CUDA one only on a CUDA device)."""
    torch.set_rng_state(state["rng"]["cpu"])
    if device.type == "cuda" and state["rng"].get("cuda") is not None:
        torch.cuda.set_rng_state(state["rng"]["cuda"], device)


class CheckpointManager:
    """Saves ``step_XXXXXXXX.pt`` files in ``folder`` and keeps the newest ``keep_last``."""

    def __init__(self, folder: str | Path, keep_last: int = 2):
        self.folder = Path(folder)
        self.keep_last = keep_last

    def checkpoints(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.iterdir() if CHECKPOINT_RE.match(p.name)]
        return sorted(found, key=lambda p: int(CHECKPOINT_RE.match(p.name).group(1)))

    def latest(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete ``*.tmp`` files left in the checkpoint folder by a writer that was killed mid-write (atomic saves
        write a temporary file and rename it; a kill -9 leaves the temporary behind, 100+ MB each)."""
        stale = sorted(self.folder.glob("step_*.pt.*.tmp")) if self.folder.is_dir() else []
        for path in stale:
            path.unlink(missing_ok=True)
        if stale:
            log.warning("removed %d incomplete checkpoint file(s) left by an interrupted write: %s", len(stale),
                        ", ".join(p.name for p in stale))
        return stale

    def newest_readable(self) -> tuple[Path, dict] | None:
        """The newest checkpoint that can be read, and its state; an unreadable newer one (truncated, corrupt) is
        reported and passed over. None when there is none; CheckpointError when every one is unreadable."""
        unreadable = []
        for path in reversed(self.checkpoints()):
            try:
                state = self.load(path)
            except UnreadableCheckpoint as e:
                log.warning("checkpoint %s is unreadable (%s): trying the previous one", path, e.reason)
                unreadable.append(path)
                continue
            if unreadable:
                log.warning("resuming from %s, the newest readable checkpoint; %s left in place for inspection",
                            path.name, ", ".join(p.name for p in unreadable))
            return path, state
        if unreadable:
            names = ", ".join(p.name for p in unreadable)
            raise CheckpointError(f"every checkpoint in {self.folder} is unreadable ({names}); move them away to "
                                  "start this run over, or start a new run folder")
        return None

    def save(self, state: dict, step: int) -> Path:
        path = self.folder / f"step_{step:08d}.pt"
        atomic_torch_save({"format_version": FORMAT_VERSION, **state}, path)
        for old in self.checkpoints()[: -self.keep_last]:
            if old != path:
                old.unlink(missing_ok=True)
        return path

    @staticmethod
    def load(path: str | Path) -> dict:
        """The training state in ``path``, its bytes checked against their checksums first (``verify_checksums``)."""
        if Path(path).is_file() and verify_checksums(path) is False:  # a missing file: read_checkpoint says so
            log.info("%s carries no checksums (written with torch's compute_crc32 off): loaded without a content "
                     "check", path)
        try:
            state = read_checkpoint(path)
        except UnreadableCheckpoint as e:  # here it is one of ours: say so, not "give a release file"
            raise UnreadableCheckpoint(f"{path} is unreadable ({e.reason}): the file is truncated or corrupt; "
                                       "resume from an older step_*.pt (checkpoint.resume=<path>) or start a new run "
                                       "folder", e.reason) from None
        if "progress" not in state or "optimizer" not in state:
            raise CheckpointError(
                f"{path} holds model weights only (no training state), so a run cannot resume from it; use it as "
                "model.init_from instead"
            )
        if state.get("format_version", 0) != FORMAT_VERSION:
            raise CheckpointError(
                f"{path} was written by another version of attent-vision (checkpoint format "
                f"{state.get('format_version', 0)}, this version reads {FORMAT_VERSION}), so it cannot be resumed "
                "exactly; start a new run folder (its weights still load as model.init_from or init_from)"
            )
        return state


# What a run writes into its folder (both stages, the downstream suite, the tracker): what ``archive`` moves, and
# what marks a folder as holding an earlier run. Not the log file (<job>.log) or .hydra/: the running invocation
# has them open or has just written them (the earlier run's command, .hydra/accepted/, is copied along instead).
RUN_OUTPUTS = ("checkpoints", "results.json", "config.yaml", "pretrained.pth", "finetuned.pth",
               "selections.npz",  # pretraining/sample_record.py
               "reference",  # learnability's reference model's own run (pretraining/reference_stage.py)
               "reconstructions", "downstream", "wandb_id.txt", "wandb")
ACCEPTED_COMMAND = Path(".hydra") / "accepted"  # cli/run_metadata.py: the Hydra files of the run's own command


def earlier_outputs(run_dir: Path) -> list[str]:
    """The names in RUN_OUTPUTS present in ``run_dir`` (an empty folder does not count)."""
    found = []
    for name in RUN_OUTPUTS:
        path = Path(run_dir) / name
        if path.is_file() or (path.is_dir() and any(path.iterdir())):
            found.append(name)
    return found


def archive_run(run_dir: Path) -> Path:
    """Move everything an earlier run produced in ``run_dir`` (RUN_OUTPUTS) into ``run_dir/archived/<time>/``, with
    a copy of its command (.hydra/accepted/); returns that folder."""
    run_dir = Path(run_dir)
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    target, n = run_dir / "archived" / stamp, 1
    while target.exists():  # two archives within a second
        n += 1
        target = run_dir / "archived" / f"{stamp}_{n}"
    target.mkdir(parents=True)
    for name in RUN_OUTPUTS:
        if (run_dir / name).exists():
            shutil.move(str(run_dir / name), str(target / name))
    if (run_dir / ACCEPTED_COMMAND).is_dir():
        shutil.copytree(run_dir / ACCEPTED_COMMAND, target / ".hydra")
    return target


def config_differences(saved: dict, current: dict, may_differ: tuple[str, ...]) -> list[str]:
    """Every setting that differs between a checkpoint's config and the current one, as ``key: old -> new`` lines,
    except those under the dotted keys or sections in ``may_differ`` (settings that do not change what a run
    computes: logging, loader workers, checkpointing ...). Everything else, augmentation included, must match."""
    a, b = flatten(saved), flatten(current)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if not is_under(k, may_differ) and a.get(k) != b.get(k)]
