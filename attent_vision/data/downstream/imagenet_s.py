"""ImageNet-S50 (Gao et al.): 50 ImageNet classes with image labels and, for some splits, segmentation masks.

    <root>/train/<wnid>/<stem>.JPEG                    64,431 images, image labels only
    <root>/validation/<wnid>/<stem>.JPEG               752 images ('val/' is accepted too)
    <root>/validation-segmentation/<wnid>/<stem>.png   their masks
    <root>/train-semi/<wnid>/..., train-semi-segmentation/<wnid>/...   500 images with masks

Class index = position of the wnid in sorted order (taken from ``train/`` when present, so that every split
shares one index). Masks are RGB PNGs whose class id is R + 256 * G: 0 background, 1..50 the classes in the same
sorted order (so mask id = class index + 1), 1000 an ignored region.
"""

import logging
from pathlib import Path

import torch

from ...errors import DataError
from ..image_io import SKIP_HINT, decode_image_file, list_images
from ..roots import resolve_root
from ..skipping import SkippingDataset

log = logging.getLogger(__name__)

IMAGENET_S50_ENV = "IMAGENET_S50_ROOT"
MASK_IGNORE_ID = 1000  # ImageNet-S's id for regions the annotators left undecided
IGNORE_INDEX = 255  # what MASK_IGNORE_ID becomes: the ignore_index of the segmentation loss and metrics
SPLIT_ALIASES = {"validation": ("validation", "val"), "val": ("val", "validation")}
EXPECTED = "train/ and validation/ (or val/), each with <wnid>/ class folders"


def find_imagenet_s_root(root: str | Path | None) -> Path:
    """The ImageNetS50 folder: ``root`` (or $IMAGENET_S50_ROOT) itself, or its ``ImageNetS50/`` subfolder."""
    path = resolve_root(root, IMAGENET_S50_ENV, "ImageNet-S50", EXPECTED)
    if not any((path / name).is_dir() for name in ("train", "validation", "val")) and (path / "ImageNetS50").is_dir():
        path = path / "ImageNetS50"
    return path


def split_folder(root: Path, split: str) -> Path:
    """``<root>/<split>``, accepting 'validation' and 'val' for each other."""
    for name in SPLIT_ALIASES.get(split, (split,)):
        if (root / name).is_dir():
            return root / name
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    raise DataError(f"split folder {root / split} does not exist (found: {found}); point data.root at the ImageNetS50 "
                    f"folder that holds {EXPECTED}")


def class_folders(folder: Path) -> list[str]:
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not names:
        raise DataError(f"{folder} has no class folders; expected {folder}/<wnid>/<image>.JPEG")
    return names


def wnid_order(root: Path, split_dir: Path) -> list[str]:
    """Sorted wnids of ``train/`` (the class index every split shares), else of the split itself."""
    reference = root / "train" if (root / "train").is_dir() else split_dir
    classes = class_folders(reference)
    extra = sorted(set(class_folders(split_dir)) - set(classes))
    if extra:
        raise DataError(f"{split_dir / extra[0]} is a class that {reference} does not have, so its class index is "
                        f"undefined; remove it or add it to {reference}")
    return classes


def decode_imagenet_s_mask(mask: torch.Tensor) -> torch.Tensor:
    """Class ids of an ImageNet-S mask. mask: uint8 C x H x W with C = 3 or 4 (RGB[A]); returns int64 H x W with
    id = R + 256 * G (the blue channel and alpha carry nothing)."""
    return mask[0].to(torch.int64) + 256 * mask[1].to(torch.int64)


def mask_ids_to_labels(ids: torch.Tensor, num_classes: int, path: Path | str) -> torch.Tensor:
    """Decoded ids (int64 H x W) -> training labels: 0..num_classes kept, 1000 -> 255 (ignore). Any other id means
    the mask does not belong to this class set: a DataError naming the file, never a silent clamp."""
    unknown = (ids > num_classes) & (ids != MASK_IGNORE_ID)
    if bool(unknown.any()):
        bad = sorted(set(ids[unknown].unique().tolist()))[:5]
        raise DataError(f"{path} holds mask ids {bad} outside the known range (0 background, 1..{num_classes} "
                        f"classes, {MASK_IGNORE_ID} ignore; id = R + 256 * G); check that it is an ImageNet-S50 mask; "
                        f"{SKIP_HINT}")
    return torch.where(ids == MASK_IGNORE_ID, IGNORE_INDEX, ids)


class ImageNetS50Classification(SkippingDataset):
    """Images and class labels of one ImageNet-S50 split.

    Args:
        root: the ImageNetS50 folder (or a folder holding ``ImageNetS50/``); None = $IMAGENET_S50_ROOT.
        split: 'train', 'validation' (or 'val': either folder name is accepted), or any other split folder.
        skip_bad_samples: leave out empty class folders at scan time (listed in ``skipped``) and return
            ``{'index', 'bad'}`` for images that fail to load (see data/skipping.py).

    Item: {'image': uint8 3 x H x W, 'label': int in [0, num_classes)}. ``classes``: the sorted wnids (50 for the
    real data; the embedded synthetic stand-in has fewer).
    """

    def __init__(self, root: str | Path | None, split: str, *, skip_bad_samples: bool = False):
        self.root = find_imagenet_s_root(root)
        self.split = split
        self.skip_bad_samples = skip_bad_samples
        self.skipped: list[str] = []
        self.split_dir = split_folder(self.root, split)
        self.classes = wnid_order(self.root, self.split_dir)
        self.samples: list[tuple[Path, int]] = []
        for label, wnid in enumerate(self.classes):
            cdir = self.split_dir / wnid
            if not cdir.is_dir():
                log.warning("%s has no folder for class %s: it contributes no samples", self.split_dir, wnid)
                continue
            images = list_images(cdir)
            if not images:
                self.scan_problem(f"class folder {cdir} holds no images (.JPEG/.jpg/.png); fill it or remove it (and "
                                  "from train/ too), or set data.skip_bad_samples=true to go on without it")
            self.samples += [(images[stem], label) for stem in sorted(images)]
        self.log_skipped(self.split_dir)
        if not self.samples:
            raise DataError(f"no images found under {self.split_dir}/<wnid>/; check data.root")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> dict:
        path, label = self.samples[index]
        return {"image": decode_image_file(path, rgb=True), "label": label}


class ImageNetS50Segmentation(SkippingDataset):
    """Images and masks of an ImageNet-S50 split that has them ('validation' or 'train-semi').

    Images come from ``<split>/<wnid>/`` and masks from ``<split>-segmentation/<wnid>/``, paired by stem.
    Item: {'image': uint8 3 x H x W, 'semseg': int64 H x W with 0 background, 1..num_classes - 1 the classes
    (wnid index + 1), 255 ignore}. ``num_classes`` counts the background (51 for the real data).
    An image without its mask (or a mask without its image) is an error naming the file, or with
    ``skip_bad_samples`` a sample left out and listed in ``skipped``.
    """

    def __init__(self, root: str | Path | None, split: str = "validation", *, skip_bad_samples: bool = False):
        self.root = find_imagenet_s_root(root)
        self.split = split
        self.skip_bad_samples = skip_bad_samples
        self.skipped: list[str] = []
        self.split_dir = split_folder(self.root, split)
        self.mask_dir = self.split_dir.with_name(self.split_dir.name + "-segmentation")
        if not self.mask_dir.is_dir():
            raise DataError(f"mask folder {self.mask_dir} does not exist; segmentation needs the split's masks in "
                            f"{self.mask_dir.name}/<wnid>/<stem>.png (splits with masks: validation, train-semi)")
        self.classes = wnid_order(self.root, self.split_dir)
        self.samples: list[tuple[Path, Path]] = []
        for wnid in self.classes:
            images = list_images(self.split_dir / wnid) if (self.split_dir / wnid).is_dir() else {}
            masks = list_images(self.mask_dir / wnid) if (self.mask_dir / wnid).is_dir() else {}
            if (self.split_dir / wnid).is_dir() and not images:
                self.scan_problem(f"class folder {self.split_dir / wnid} holds no images; fill it or remove it, or "
                                  "set data.skip_bad_samples=true")
            for stem in sorted(set(images) | set(masks)):
                if stem not in masks:
                    self.scan_problem(f"{self.mask_dir / wnid / (stem + '.png')} is missing: {images[stem]} has no "
                                      f"mask; {SKIP_HINT}")
                elif stem not in images:
                    self.scan_problem(f"{masks[stem]} has no image {self.split_dir / wnid / stem}.JPEG; {SKIP_HINT}")
                else:
                    self.samples.append((images[stem], masks[stem]))
        self.log_skipped(self.split_dir)
        if not self.samples:
            raise DataError(f"no image/mask pairs found under {self.split_dir} and {self.mask_dir}; check data.root")

    @property
    def num_classes(self) -> int:
        return len(self.classes) + 1

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> dict:
        image_path, mask_path = self.samples[index]
        image = decode_image_file(image_path, rgb=True)
        mask = decode_image_file(mask_path)
        if mask.shape[0] not in (3, 4) or mask.dtype != torch.uint8:
            raise DataError(f"{mask_path} is a {mask.shape[0]}-channel {mask.dtype} image; ImageNet-S masks are 8-bit "
                            f"RGB PNGs (id = R + 256 * G); {SKIP_HINT}")
        if mask.shape[-2:] != image.shape[-2:]:
            raise DataError(f"{mask_path} is {tuple(mask.shape[-2:])} but its image {image_path} is "
                            f"{tuple(image.shape[-2:])}; a mask must have its image's height and width; {SKIP_HINT}")
        semseg = mask_ids_to_labels(decode_imagenet_s_mask(mask), len(self.classes), mask_path)
        return {"image": image, "semseg": semseg}
