"""Write the embedded synthetic dataset once into a cache folder, in the real pretraining layout.

    <cache>/synthetic-<fingerprint>/{train,val}/{rgb,depth,semseg}/<class>/<stem>.png
    <cache>/synthetic-<fingerprint>/samples.csv      per-sample difficulty (clutter, noise, duplicate_of)

The folder name is a fingerprint of the generation settings, so changing a setting writes a new folder and
never reuses a stale one. Writing goes to a temporary folder that is renamed into place when complete, so an
interrupted generation leaves nothing half-written behind.
"""

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from .synthetic import class_folder, depth_to_png16, render_scene, scene_specs, spec_row, stem_for, write_manifest

log = logging.getLogger(__name__)

CACHE_ENV = "ATTENT_VISION_CACHE"


@dataclass(frozen=True)
class SyntheticSettings:
    """Generation settings; every field is part of the cache fingerprint."""

    num_train: int = 1024
    num_val: int = 128
    image_size: int = 80
    num_classes: int = 10
    max_objects: int = 5
    max_noise: float = 0.25
    duplicate_fraction: float = 0.1
    seed: int = 0
    version: int = 2  # bump when the renderer changes


def default_cache_dir() -> Path:
    """$ATTENT_VISION_CACHE, else ~/.cache/attent_vision."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "attent_vision")


def fingerprint(settings: SyntheticSettings) -> str:
    return hashlib.sha1(json.dumps(asdict(settings), sort_keys=True).encode()).hexdigest()[:10]


def _write_split(root: Path, split: str, count: int, settings: SyntheticSettings, rng: np.random.Generator) -> list[dict]:
    specs = scene_specs(count, rng, settings.max_objects, settings.max_noise, settings.duplicate_fraction)
    layouts, rows = [], []
    for i, spec in enumerate(specs):
        base = layouts[spec.duplicate_of] if spec.duplicate_of >= 0 else None
        rgb, depth, semseg, label, layout = render_scene(settings.image_size, rng, spec, settings.num_classes, base)
        layouts.append(layout)
        cls, stem = class_folder(label), stem_for(split, i)
        for modality, array in (("rgb", rgb), ("depth", depth_to_png16(depth)), ("semseg", semseg)):
            folder = root / split / modality / cls
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(folder / f"{stem}.png", compress_level=1)
        rows.append(spec_row(split, cls, stem, label, spec))
    return rows


def write_once(root: Path, write: Callable[[Path], None], marker: str) -> Path:
    """Make ``root`` exist with complete contents: if ``root/marker`` is missing, call ``write(tmp)`` on a temporary
    sibling folder (which must create ``marker`` last) and rename it into place. Concurrent writers (ranks, parallel
    test sessions) each write their own copy; the first rename wins and the others are discarded."""
    if (root / marker).is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=root.name + ".tmp-", dir=root.parent))
    try:
        write(tmp)
        try:
            os.rename(tmp, root)
        except OSError:  # another process finished first: theirs is identical, keep it
            if not (root / marker).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def ensure_synthetic_dataset(settings: SyntheticSettings, cache_dir: str | Path | None = None) -> Path:
    """Return the root of the synthetic dataset for ``settings``, generating it first if it is not cached."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    root = cache / f"synthetic-{fingerprint(settings)}"
    if (root / "samples.csv").is_file():
        return root

    def write(tmp: Path) -> None:
        log.info("writing the synthetic dataset (%d train, %d val) to %s", settings.num_train, settings.num_val, root)
        rng = np.random.default_rng(settings.seed)
        rows = _write_split(tmp, "train", settings.num_train, settings, rng)
        rows += _write_split(tmp, "val", settings.num_val, settings, rng)
        (tmp / "settings.json").write_text(json.dumps(asdict(settings), indent=2))
        write_manifest(tmp / "samples.csv", rows)  # the completion marker: written last

    return write_once(root, write, "samples.csv")
