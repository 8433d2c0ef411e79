"""The probes' labelled images, decoded once and held in memory at the model's input size.

Classification probes (kNN, linear) read an ImageNet-S50-style folder (``<root>/<split>/<class>/<image>``); the
depth probe reads a prepared NYUv2-style folder (``<root>/<split>/{rgb,depth}/data/<idx>.png``). Without a root,
both come from the embedded probe set: the renderer of the embedded data, written once into the cache
(``ensure_synthetic_downstream`` with the probe's sizes). Images are resized (shorter side) and centre-cropped to
the model's input size S; depth and its validity with the same geometry (nearest). Sets are kept per process,
keyed by (folder, split, S), so a benchmark that trains many runs in one process decodes them once.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from ..data.downstream.embedded import ensure_synthetic_downstream
from ..data.downstream.imagenet_s import ImageNetS50Classification
from ..data.downstream.nyuv2 import NYUv2
from ..errors import DataError

_LOADED: dict[tuple, object] = {}  # (kind, root, split, size) -> the decoded set, for this process's runs


@dataclass(frozen=True)
class ClassificationSet:
    images: torch.Tensor  # N x 3 x S x S uint8
    labels: torch.Tensor  # N long
    num_classes: int
    folder: str


@dataclass(frozen=True)
class DepthSet:
    images: torch.Tensor  # N x 3 x S x S uint8
    depth: torch.Tensor  # N x 1 x S x S float32, metres
    valid: torch.Tensor  # N x 1 x S x S bool
    folder: str


def square(image: torch.Tensor, size: int, interpolation: InterpolationMode) -> torch.Tensor:
    """C x H x W -> C x size x size: shorter side resized to ``size``, then the centre crop."""
    h, w = image.shape[-2:]
    scaled = [size, round(w * size / h)] if h <= w else [round(h * size / w), size]
    antialias = interpolation != InterpolationMode.NEAREST
    return TF.center_crop(TF.resize(image, scaled, interpolation=interpolation, antialias=antialias), [size, size])


def embedded_roots(embedded) -> tuple[Path, Path]:
    """(ImageNetS50-like root, NYUv2-like root) of the embedded probe set with sizes ``embedded`` (probe.embedded)."""
    root = ensure_synthetic_downstream(train_per_class=embedded.train_per_class,
                                       val_per_class=embedded.val_per_class, nyu_train=embedded.nyu_train,
                                       nyu_test=embedded.nyu_test)
    return root / "ImageNetS50", root / "nyuv2"


def load_classification(root: str | Path, split: str, size: int) -> ClassificationSet:
    """One split of an ImageNet-S50-style folder at S = ``size``; a DataError naming ``probe.root`` when the split
    is missing or holds fewer than two classes."""
    key = ("cls", str(root), split, size)
    if key not in _LOADED:
        try:
            dataset = ImageNetS50Classification(root, split)
        except DataError as e:
            raise DataError(f"probe.root: {e}") from None
        if dataset.num_classes < 2:
            raise DataError(f"probe.root: {dataset.split_dir} holds {dataset.num_classes} class folder; a "
                            "classification probe needs at least 2 classes (<split>/<class>/<image>)")
        items = [dataset[i] for i in range(len(dataset))]
        _LOADED[key] = ClassificationSet(
            images=torch.stack([square(item["image"], size, InterpolationMode.BILINEAR) for item in items]),
            labels=torch.tensor([item["label"] for item in items], dtype=torch.long),
            num_classes=dataset.num_classes, folder=str(dataset.split_dir))
    return _LOADED[key]


def load_depth(root: str | Path, split: str, size: int) -> DepthSet:
    """One split of a prepared NYUv2-style folder at S = ``size`` (rgb, depth in metres, validity)."""
    key = ("depth", str(root), split, size)
    if key not in _LOADED:
        try:
            dataset = NYUv2(root, split, modalities=("rgb", "depth"))
        except DataError as e:
            raise DataError(f"probe.depth_root: {e}") from None
        if not len(dataset):
            raise DataError(f"probe.depth_root: {Path(dataset.root) / split} holds no frames; prepare the data with "
                            "attent-prepare-nyuv2")
        items = [dataset[i] for i in range(len(dataset))]
        nearest = InterpolationMode.NEAREST
        _LOADED[key] = DepthSet(
            images=torch.stack([square(item["rgb"], size, InterpolationMode.BILINEAR) for item in items]),
            depth=torch.stack([square(item["depth"], size, nearest) for item in items]),
            valid=torch.stack([square(item["valid"], size, nearest) for item in items]),
            folder=str(Path(dataset.root) / split))
    return _LOADED[key]
