"""The multi-modal folder dataset: reads the pretraining layout that MultiMAE's pseudo-labels use.

    <root>/<split>/<modality>/<class>/<stem>.<ext>      ext matched case-insensitively

Modalities of one sample are paired by (class, stem), never by position in a listing. A stem present in one
modality and missing in another is an error naming the file, or, with ``skip_bad_samples``, a sample that is left
out, counted and reported.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision.io as tio
from torch.utils.data import Dataset

from ..errors import DataError
from ..models.input_adapters import SEMSEG_IGNORE_INDEX

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg"}
FIX_HINT = "fix or remove the file, or set data.skip_bad_samples=true to leave such samples out (they are counted)"


@dataclass(frozen=True)
class Sample:
    class_index: int
    stem: str
    paths: dict[str, Path]


def _list_images(folder: Path) -> dict[str, Path]:
    """stem -> path for the image files directly in ``folder``."""
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}


def read_modality(path: Path, modality: str, semseg_num_classes: int = 133) -> torch.Tensor:
    """Decode one file into its raw tensor.

    rgb: uint8 3 x H x W. depth: float32 1 x H x W, the 16-bit value / 2**16. semseg: int64 H x W, ids outside
    [0, semseg_num_classes) set to the ignore index (255) rather than clamped into a real class.
    Raises DataError naming the file when it cannot be decoded or has the wrong format.
    """
    try:
        mode = tio.ImageReadMode.RGB if modality == "rgb" else tio.ImageReadMode.UNCHANGED
        image = tio.decode_image(tio.read_file(str(path)), mode=mode)
    except Exception as e:
        raise DataError(f"cannot decode {path} ({str(e).splitlines()[0][:120]}); {FIX_HINT}") from None
    if modality == "rgb":
        return image
    if image.shape[0] != 1:
        raise DataError(f"{path} has {image.shape[0]} channels; {modality} maps must be single-channel PNGs")
    if modality == "depth":
        if image.dtype != torch.uint16:
            raise DataError(
                f"{path} is a {image.dtype} image; depth must be a 16-bit PNG (depth = value / 2**16). Re-export it "
                f"as uint16; {FIX_HINT}"
            )
        return image.to(torch.int32).float() / 65536.0
    labels = image[0].long()
    return torch.where(labels < semseg_num_classes, labels, SEMSEG_IGNORE_INDEX)


class MultiModalFolder(Dataset):
    """Samples of ``<root>/<split>/<modality>/<class>/<stem>.<ext>`` for the given modalities.

    ``dataset[i]`` returns {modality: raw tensor} (see :func:`read_modality`) with equal height and width across
    modalities. ``samples[i].class_index`` is the image-level class (sorted class-folder order).
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        modalities: list[str],
        *,
        skip_bad_samples: bool = False,
        semseg_num_classes: int = 133,
    ):
        self.root = Path(root)
        self.split = split
        self.modalities = list(modalities)
        self.skip_bad_samples = skip_bad_samples
        self.semseg_num_classes = semseg_num_classes
        self.skipped: list[str] = []  # paths left out at scan time (skip_bad_samples)
        self.samples, self.classes = self._scan()

    def _scan(self) -> tuple[list[Sample], list[str]]:
        split_dir = self.root / self.split
        if not self.root.is_dir():
            raise DataError(f"data root {self.root} does not exist; set data.root to the folder that holds '{self.split}/'")
        if not split_dir.is_dir():
            raise DataError(
                f"split folder {split_dir} does not exist; expected {self.root}/{self.split}/<modality>/<class>/... "
                f"(found: {sorted(p.name for p in self.root.iterdir() if p.is_dir())})"
            )
        found: dict[str, dict[tuple[str, str], Path]] = {}
        for m in self.modalities:
            mdir = split_dir / m
            if not mdir.is_dir():
                raise DataError(
                    f"modality folder {mdir} is missing; add it or remove '{m}' from the model's domains"
                )
            found[m] = {}
            class_dirs = sorted(p for p in mdir.iterdir() if p.is_dir())
            if not class_dirs:
                raise DataError(f"{mdir} has no class folders; expected {mdir}/<class>/<stem>.<ext>")
            for cdir in class_dirs:
                images = _list_images(cdir)
                if not images:
                    raise DataError(f"class folder {cdir} holds no images (.png/.jpg/.jpeg); fill it or remove it")
                found[m].update({(cdir.name, stem): p for stem, p in images.items()})

        keys = sorted(set().union(*[set(v) for v in found.values()]))
        classes = sorted({c for c, _ in keys})
        class_index = {c: i for i, c in enumerate(classes)}
        samples = []
        for key in keys:
            missing = [m for m in self.modalities if key not in found[m]]
            if missing:
                present = next(found[m][key] for m in self.modalities if key in found[m])
                where = split_dir / missing[0] / key[0] / f"{key[1]}.*"
                if not self.skip_bad_samples:
                    raise DataError(f"{where} is missing: {present} has no '{missing[0]}' partner; {FIX_HINT}")
                self.skipped.append(str(present))
                continue
            samples.append(Sample(class_index[key[0]], key[1], {m: found[m][key] for m in self.modalities}))
        if self.skipped:
            log.warning(
                "%s/%s: left out %d samples with a missing modality (first: %s)",
                self.root, self.split, len(self.skipped), ", ".join(self.skipped[:3]),
            )
        if not samples:
            raise DataError(f"no complete samples found under {split_dir} for modalities {self.modalities}")
        return samples, classes

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.samples[index]
        out = {m: read_modality(p, m, self.semseg_num_classes) for m, p in sample.paths.items()}
        sizes = {m: tuple(t.shape[-2:]) for m, t in out.items()}
        if len(set(sizes.values())) > 1:
            raise DataError(
                f"modalities of sample {sample.paths[self.modalities[0]]} differ in size {sizes}; all modalities of a "
                f"sample must have the same height and width; {FIX_HINT}"
            )
        return out
