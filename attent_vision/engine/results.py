"""results.json: the machine-readable record of a run, one schema for both stages.

The training stages write it (atomically, after every epoch and at the end); the report and the benchmarks read it
(the report package's helpers), so every reader agrees on the keys.
Metric names follow one convention in both stages: ``train_<name>`` for training statistics, ``val_<name>`` for
evaluation metrics (``val_loss`` in pretraining; ``val_top1``, ``val_miou``, ``val_delta1`` ... in fine-tuning).
"""

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..atomic_files import atomic_write
from ..errors import UserError
from ..storage import writing

RUNNING, COMPLETED, INTERRUPTED, FAILED, DIVERGED = "running", "completed", "interrupted", "failed", "diverged"
STATUSES = (RUNNING, COMPLETED, INTERRUPTED, FAILED, DIVERGED)


@dataclass
class RunResults:
    """The fields of every results.json; ``details`` holds the stage's own fields (written at the top level)."""

    stage: str  # pretrain | finetune
    status: str  # one of STATUSES
    experiment: str
    run_dir: str
    setting: dict  # what the run was asked to do (method, model, data, seed, ranks, device, precision)
    initial: dict  # val_* metrics at initialisation (pretraining)
    final: dict  # val_* metrics of the last evaluation, train_* statistics of the last epoch
    epochs: int  # planned epochs
    epochs_completed: int
    optimizer_steps: int
    planned_optimizer_steps: int
    samples_seen: int
    bad_samples: int
    bad_examples: list[str]
    time_s: dict[str, float]  # wall time split by phase, with ``total``
    history: list[dict]  # one entry per epoch
    exit_code: int = 0
    diverged: dict | None = None  # {"step", "what"} when training produced non-finite values (status diverged)
    config: dict = field(default_factory=dict)  # the resolved config (the report groups runs by it)
    provenance: dict = field(default_factory=dict)  # git commit (dirty flag), library versions, host, device
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        record = asdict(self)
        details = record.pop("details")
        return {**record, **details}


def stopped_by_signal(result: dict) -> bool:
    """A run (or job, or task) interrupted by a signal (exit status 128 + n), not at ``trainer.stop_after_steps``
    (exit status 0, as asked)."""
    return result.get("status") == INTERRUPTED and (result.get("exit_code") or 0) > 128


def finite_or_null(value):
    """``value`` with every NaN or infinite float replaced by None (recursively): strict JSON has no NaN token,
    and a reader that gets null knows there is no number (the run's status and history say why)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value


def write_json_atomic(data: dict, path: str | Path) -> None:
    """Write strict JSON (non-finite floats become null) through a temporary file renamed into place. A full disk
    or an unwritable folder is a StorageError naming ``path``; the temporary file is removed, an earlier file kept."""
    path = Path(path)
    data = finite_or_null(json.loads(json.dumps(data, default=float)))
    with writing(path), atomic_write(path, "w") as f:  # 0644 under umask 022, as collaborators expect
        json.dump(data, f, indent=2, sort_keys=False, allow_nan=False)
        f.write("\n")


class IncompleteResults(UserError, ValueError):
    """A results.json that is not complete JSON (a copy made while it was written, a file cut short by a full disk or
    a kill of another writer, an edit by hand). A ValueError too: callers that treat such a file as absent still do."""


def read_results(path: str | Path) -> dict:
    """The contents of a results.json. A file that is not complete JSON (our writer renames whole files into place,
    but a file copied while written, cut short by a full disk or written by hand can be) is an IncompleteResults
    naming the file; a missing file is FileNotFoundError as for any open."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return json.loads(data)
    except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
        raise IncompleteResults(
            f"{path} is not complete JSON (the run may still be writing it or was killed); rerun the report later "
            "or delete the file"
        ) from None


def saved_config(run_dir: str | Path) -> dict | None:
    """The resolved config a run wrote beside its results.json (config.yaml); None when it cannot be read."""
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(OmegaConf.load(Path(run_dir) / "config.yaml"), resolve=True)
    except Exception:  # missing, unreadable, not YAML: no record
        return None


def recorded_config(run_dir: str | Path) -> tuple[str, dict] | None:
    """(file, resolved config) of the run whose outputs are in ``run_dir``: results.json's ``config``, else
    config.yaml; None when neither can be read."""
    try:
        config = read_results(Path(run_dir) / "results.json").get("config")
        if isinstance(config, dict) and config:
            return "results.json", config
    except (OSError, ValueError, AttributeError):
        pass
    config = saved_config(run_dir)
    return None if config is None else ("config.yaml", config)
