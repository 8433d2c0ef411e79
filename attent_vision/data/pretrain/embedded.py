"""Write the embedded synthetic dataset once into a cache folder, in the real pretraining layout.

    <cache>/synthetic-<fingerprint>/{train,val}/{rgb,depth,semseg}/<class>/<stem>.png
    <cache>/synthetic-<fingerprint>/samples.csv      per-sample difficulty (clutter, noise, duplicate_of)

The folder name fingerprints the generation settings and writing is atomic (data/cache.py). The settings
dataclass is also the schema of the ``data.synthetic`` config keys: one definition for both.
"""

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import ClassVar, Optional

import numpy as np
from PIL import Image

from ..cache import default_cache_dir, fingerprint, write_once
from ..scenes import class_folder, depth_to_png16, render_scene, scene_specs, spec_row, stem_for, write_manifest

log = logging.getLogger(__name__)

@dataclass
class SyntheticSettings:
    """Generation settings; every field (and ``version``) is part of the cache fingerprint."""

    num_train: int = 1024  # training scenes
    num_val: int = 128  # validation scenes
    image_size: Optional[int] = None  # stored side; None = 5/4 of the model's input (see ``for_model``)
    num_classes: int = 10  # object classes (at most 10)
    max_objects: int = 5  # clutter: 1..max_objects objects per scene
    max_noise: float = 0.25  # largest per-scene rgb noise level
    duplicate_fraction: float = 0.1  # share of scenes that are jittered copies of earlier ones
    seed: int = 0  # generation seed
    version: ClassVar[int] = 2  # bump when the renderer changes

    def for_model(self, model_image_size: int) -> "SyntheticSettings":
        """These settings with the stored size resolved: a little larger than the model's input, so that
        random-resized crops have pixels to choose from."""
        return replace(self, image_size=self.image_size or round(model_image_size * 5 / 4))


def _write_split(root: Path, split: str, count: int, settings: SyntheticSettings,
                 rng: np.random.Generator) -> list[dict]:
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


def ensure_synthetic_dataset(settings: SyntheticSettings, cache_dir: str | Path | None = None) -> Path:
    """Return the root of the synthetic dataset for ``settings``, generating it first if it is not cached."""
    if settings.image_size is None:
        raise ValueError("SyntheticSettings.image_size is None; resolve it with settings.for_model(image_size)")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    root = cache / f"synthetic-{fingerprint(settings)}"

    def write(tmp: Path) -> None:
        log.info("writing the synthetic dataset (%d train, %d val) to %s", settings.num_train, settings.num_val, root)
        rng = np.random.default_rng(settings.seed)
        rows = _write_split(tmp, "train", settings.num_train, settings, rng)
        rows += _write_split(tmp, "val", settings.num_val, settings, rng)
        (tmp / "settings.json").write_text(json.dumps(dict(asdict(settings), version=settings.version), indent=2))
        write_manifest(tmp / "samples.csv", rows)  # the completion marker: written last

    return write_once(root, write, "samples.csv")
