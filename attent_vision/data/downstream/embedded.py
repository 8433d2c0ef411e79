"""The embedded fine-tuning data: ImageNet-S50-like and NYUv2-like splits written once into the cache folder, in
the real layouts, so that the real loaders (imagenet_s.py, nyuv2.py beside this file) read them.

    <cache>/synthetic-downstream-<fingerprint>/
        ImageNetS50/{train,validation,train-semi}/<class>/<stem>.JPEG
        ImageNetS50/{validation,train-semi}-segmentation/<class>/<stem>.png   RGB, id = R + 256 * G
        nyuv2/{train,test}/{rgb,depth,semseg,mask_valid}/data/{idx:04d}.png
        settings.json                                                        written last (completion marker)

The scenes come from the same renderer as the embedded pretraining data (data/scenes.py), so a MultiMAE
pretrained there transfers: the image-level class is the object class covering the most pixels, masks mark that
class's pixels, NYUv2-like semseg and depth are the rendered ones. Sizes differ from the real data on purpose
(CPU fine-tuning must take minutes): the ImageNet-S50-like set has ``num_classes`` classes (default 10, the
renderer's shape classes; the real one has 50) with balanced per-class counts, and NYUv2-like frames are
``nyu_width`` x ``nyu_height`` (4:3 like 640 x 480) instead of 640 x 480.
"""

import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

from ...errors import ConfigError
from ..cache import default_cache_dir, fingerprint, write_once
from ..scenes import (
    CLASS_NAMES,
    FLOOR_ID,
    WALL_ID,
    SceneSpec,
    class_folder,
    render_scene,
)

log = logging.getLogger(__name__)

MARKER = "settings.json"
NYU_WALL, NYU_FLOOR, NYU_FIRST_OBJECT = 1, 2, 3  # NYUv2-40 ids: 1 wall, 2 floor; objects take 3, 4, ...


@dataclass
class SyntheticDownstreamSettings:
    """Generation settings; every field (and ``version``) is part of the cache fingerprint. Also the schema of the
    fine-tuning config's ``data.synthetic`` keys: one definition for both."""

    num_classes: int = 10  # ImageNet-S50-like classes (the real set has 50; the renderer draws 10 shapes)
    train_per_class: int = 32
    val_per_class: int = 8
    semi_per_class: int = 2  # train-semi: copies of the first train images of each class, with masks
    image_size: int = 80  # ImageNet-S50-like images are image_size x image_size
    nyu_train: int = 160
    nyu_test: int = 40
    nyu_width: int = 96
    nyu_height: int = 72
    max_objects: int = 4
    max_noise: float = 0.1
    seed: int = 0
    version: ClassVar[int] = 1  # bump when the generator changes

    def __post_init__(self):
        if not 1 <= self.num_classes <= len(CLASS_NAMES):
            raise ConfigError(f"synthetic downstream num_classes={self.num_classes} must be in 1..{len(CLASS_NAMES)}")
        if self.nyu_height > self.nyu_width:
            raise ConfigError("synthetic downstream nyu_height must not exceed nyu_width (frames are landscape)")
        if min(self.train_per_class, self.val_per_class, self.nyu_train, self.nyu_test) < 1:
            raise ConfigError("synthetic downstream splits need at least one sample each")


def _scene(rng: np.random.Generator, size: int, settings: SyntheticDownstreamSettings):
    spec = SceneSpec(num_objects=int(rng.integers(1, settings.max_objects + 1)),
                     noise=float(settings.max_noise * rng.random() ** 3), duplicate_of=-1)
    return render_scene(size, rng, spec, settings.num_classes)


def boundary(region: np.ndarray) -> np.ndarray:
    """Pixels of a bool H x W map whose 3 x 3 neighbourhood holds both values: a 1-2 pixel band along edges."""
    padded = np.pad(region, 1, mode="edge")
    h, w = region.shape
    shifted = [padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return np.any(shifted, axis=0) & ~np.all(shifted, axis=0)


def imagenet_s_mask(semseg: np.ndarray, label: int) -> np.ndarray:
    """RGB mask (H x W x 3 uint8) of the labelled class: id label + 1 on its pixels, 0 elsewhere, and the ignore id
    1000 on a band along its outline (the real masks leave uncertain regions to 1000 too)."""
    from .imagenet_s import MASK_IGNORE_ID  # here, not above: the config schema imports this module's settings

    ids = np.where(semseg == label, label + 1, 0)
    ids[boundary(semseg == label)] = MASK_IGNORE_ID
    return np.stack([ids % 256, ids // 256, np.zeros_like(ids)], axis=-1).astype(np.uint8)


def _write_imagenet_s(root: Path, settings: SyntheticDownstreamSettings) -> None:
    """Balanced classes by rejection: render scenes until every class has its quota of images labelled with it."""
    rng = np.random.default_rng([settings.seed, 1])
    quotas = {"train": settings.train_per_class, "validation": settings.val_per_class}
    for split, per_class in quotas.items():
        counts = np.zeros(settings.num_classes, dtype=int)
        attempts = 0
        while counts.min() < per_class:
            attempts += 1
            if attempts > 100 * per_class * settings.num_classes:
                raise RuntimeError("the renderer did not produce every class; lower num_classes")  # never expected
            rgb, _, semseg, label, _ = _scene(rng, settings.image_size, settings)
            if counts[label] >= per_class:
                continue
            stem = f"{split}_{class_folder(label)}_{counts[label]:04d}"
            folders = [split] + (["train-semi"] if split == "train" and counts[label] < settings.semi_per_class else [])
            for folder in folders:
                image_dir = root / folder / class_folder(label)
                image_dir.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rgb).save(image_dir / f"{stem}.JPEG", quality=95)
                if folder != "train":
                    mask_dir = root / f"{folder}-segmentation" / class_folder(label)
                    mask_dir.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(imagenet_s_mask(semseg, label)).save(mask_dir / f"{stem}.png")
            counts[label] += 1


def nyu_semseg(semseg: np.ndarray) -> np.ndarray:
    """Renderer ids -> NYUv2-40-style ids (uint8 H x W): wall 1, floor 2, object class c -> 3 + c, and 0
    (unlabelled) on the seams between regions, as in the real annotations."""
    objects = NYU_FIRST_OBJECT + semseg.astype(np.int64)
    out = np.where(semseg == WALL_ID, NYU_WALL, np.where(semseg == FLOOR_ID, NYU_FLOOR, objects))
    seams = np.zeros(semseg.shape, dtype=bool)
    for value in np.unique(semseg):
        seams |= boundary(semseg == value)
    out[seams] = 0
    return out.astype(np.uint8)


def _write_nyuv2(root: Path, settings: SyntheticDownstreamSettings) -> None:
    """Frames cropped to 4:3 from square renders; depth in metres * 6553.6 with a few holes (depth 0, like sensor
    dropouts) that mask_valid marks invalid, together with depth beyond the 10 m range."""
    from .nyuv2 import DEPTH_SCALE, depth_to_uint16, semseg_palette  # torch: only when the data is written

    rng = np.random.default_rng([settings.seed, 2])
    h, w = settings.nyu_height, settings.nyu_width
    top = (w - h) // 2
    palette = semseg_palette()
    index = 0  # frames are numbered across splits, like the real frame numbers
    for split, count in (("train", settings.nyu_train), ("test", settings.nyu_test)):
        folders = {m: root / split / m / "data" for m in ("rgb", "depth", "semseg", "mask_valid")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            rgb, depth, semseg, _, _ = _scene(rng, w, settings)
            rgb, depth, semseg = rgb[top : top + h], depth[top : top + h], semseg[top : top + h]
            for _ in range(int(rng.integers(0, 3))):
                y, x = int(rng.integers(0, h - 4)), int(rng.integers(0, w - 4))
                depth[y : y + int(rng.integers(2, 8)), x : x + int(rng.integers(2, 8))] = 0.0
            stored = depth_to_uint16(depth)
            valid = (stored > 0) & (depth < 65535 / DEPTH_SCALE)
            name = f"{index:04d}.png"
            Image.fromarray(rgb).save(folders["rgb"] / name)
            Image.fromarray(stored).save(folders["depth"] / name)
            labels = Image.fromarray(nyu_semseg(semseg), mode="P")
            labels.putpalette(palette)
            labels.save(folders["semseg"] / name)
            Image.fromarray((valid * 255).astype(np.uint8)).save(folders["mask_valid"] / name)
            index += 1


def ensure_synthetic_downstream(cache_dir: str | Path | None = None, **settings) -> Path:
    """Return the root holding ``ImageNetS50/`` and ``nyuv2/`` (see the module docstring), generating it on first
    use. ``settings`` override fields of :class:`SyntheticDownstreamSettings`; the folder name fingerprints them,
    and writing is atomic, so a stale or half-written folder is never read."""
    names = {f.name for f in fields(SyntheticDownstreamSettings)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise ConfigError(f"unknown synthetic downstream setting(s) {unknown}; choose from {sorted(names)}")
    s = SyntheticDownstreamSettings(**settings)
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    root = cache / f"synthetic-downstream-{fingerprint(s)}"

    def write(tmp: Path) -> None:
        log.info("writing the synthetic fine-tuning data (%d classes x %d/%d images; NYUv2-like %d/%d frames) to %s",
                 s.num_classes, s.train_per_class, s.val_per_class, s.nyu_train, s.nyu_test, root)
        _write_imagenet_s(tmp / "ImageNetS50", s)
        _write_nyuv2(tmp / "nyuv2", s)
        (tmp / MARKER).write_text(json.dumps(dict(asdict(s), version=s.version), indent=2))

    return write_once(root, write, MARKER)
