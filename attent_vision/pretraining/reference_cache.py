"""Trained learnability reference models, kept in the data cache so that the runs of a sweep train each one once.

A reference model depends on the training data, the model and optimiser settings, the ``teaching.reference_*``
training settings, which samples the holdout holds, the seed, its global batch and the precision; it does not depend on
the selection strategy, the ratio or interval schedules, or the run's own epochs. So every run of a sweep over
those (the Table-3 rows, the frontier's budgets) that agrees on the first list can take the same model:
``<cache root>/reference_models/<16 hex>.pt``, named by a SHA-256 of those settings (the key), beside the embedded
datasets (``data.cache_dir``, default $ATTENT_VISION_CACHE or ~/.cache/attent_vision). The number of ranks and the
micro-batch are not in the key: they give the same model (the reference is trained on the global batch, up to the
order of floating-point sums).

Written whole or not at all (a temporary sibling renamed into place) by rank 0; a cache that cannot be written is a
warning, not a failure (the run has its model). A file that is unreadable, damaged (its records' CRC-32s do not
match, engine/checkpoint.py), or written for another key is ignored with a warning and the model trained again
(and the file replaced). ``teaching.reference_cache=false`` neither reads nor writes the cache.
"""

import hashlib
import json
import logging
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ..data.cache import default_cache_dir
from ..data.fingerprint import fingerprint_dataset
from ..engine.checkpoint import atomic_torch_save, verify_checksums
from ..errors import StorageError

log = logging.getLogger(__name__)

SUBFOLDER = "reference_models"
# Bump when the reference model's training changes, so older files are never taken for newer ones.
FORMAT = 2  # 2: trained through the loop core (reference_stage.py)
# Keys of teaching that change only how the trained model is used or stored, not the model itself.
NOT_IN_KEY = ("reference_cache", "reference_draws")
INFO_KEYS = {"steps", "stopped", "final_loss", "trained_samples"}  # what the training reported, kept with the weights


def cache_root(cfg) -> Path:
    """The data cache: ``data.cache_dir``, else $ATTENT_VISION_CACHE, else ~/.cache/attent_vision."""
    return Path(cfg.data.cache_dir).expanduser() if cfg.data.cache_dir else default_cache_dir()


def reference_key(cfg, view, precision: str, batch_size: int) -> dict | None:
    """What the reference model trained on ``view`` (the holdout view of the training folder) at global batch
    ``batch_size`` and ``precision`` (both as resolved for it) depends on, as a JSON-able dict; None for a dataset
    without a fingerprint (nothing to tell two datasets apart by: not cached)."""
    fingerprint = fingerprint_dataset(view.folder)
    if fingerprint is None:
        return None
    teaching = {k: v for k, v in OmegaConf.to_container(cfg.teaching, resolve=True).items()
                if k.startswith("reference_") and k not in NOT_IN_KEY}
    return {
        "format": FORMAT,
        "data": fingerprint.record["digest"],
        "holdout": digest_of([view.folder_index(i) for i in range(len(view))]),  # (ImageNet: 128k indices)
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "optim": OmegaConf.to_container(cfg.optim, resolve=True),
        "reference": teaching,
        # the view's augmentation (its masks follow from the model's settings above)
        "augmentation": {"crop_scale": list(view.crop_scale), "crop_ratio": list(view.crop_ratio),
                         "hflip_prob": view.hflip_prob},
        "seed": cfg.trainer.seed,
        "batch_size": batch_size,
        "precision": precision,
    }


def digest_of(value) -> str:
    """SHA-256 (hex) of a JSON-able value, independent of dict order."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def cache_path(cfg, digest: str) -> Path:
    return cache_root(cfg) / SUBFOLDER / f"{digest[:16]}.pt"


def load_cached(path: Path, digest: str) -> dict | None:
    """The cached entry ({'state_dict', 'info'}) at ``path`` for the key ``digest``; None when there is none, or
    (with a warning) when it cannot be used."""
    if not path.is_file():
        return None
    try:
        if verify_checksums(path) is None:
            raise ValueError("not a torch zip archive (truncated or foreign)")
        entry = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(entry, dict) or entry.get("key") != digest:
            raise ValueError("written for other settings")
        info = entry.get("info")
        if not isinstance(entry.get("state_dict"), dict) or not isinstance(info, dict) or not INFO_KEYS <= set(info):
            raise ValueError("its contents are incomplete")
    except Exception as e:  # noqa: BLE001 - a damaged file fails in many ways; all mean "retrain"
        warn_unusable(path, e)
        return None
    return entry


def warn_unusable(path: Path, error: BaseException) -> None:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    log.warning("reference model: the cached %s is unusable (%s); training it again (the file will be replaced)",
                path, reason)


def save_cached(path: Path, digest: str, key: dict, state_dict: dict, info: dict) -> bool:
    """Write the entry atomically; False (with a warning) when the cache cannot be written."""
    entry = {"key": digest, "settings": key, "info": dict(info),
             "state_dict": {name: t.detach().cpu().clone() for name, t in state_dict.items()}}
    try:
        atomic_torch_save(entry, path)  # the checkpoints' writer: temporary file, CRC-32s, rename
    except (OSError, StorageError, RuntimeError) as e:
        log.warning("reference model: not cached (%s); the run goes on with the model it trained (set "
                    "teaching.reference_cache=false to skip the cache)", str(e).splitlines()[0] if str(e) else e)
        return False
    return True
