"""The multi-modal folder dataset: reads the pretraining layout that MultiMAE's pseudo-labels use.

    <root>/<split>/<modality>/<class>/<stem>.<ext>      ext .png/.jpg/.jpeg, matched case-insensitively

Modalities of one sample are paired by (class, stem), never by position in a listing. A stem present in one
modality and missing in another, an empty (0-byte) file, or an image name that is a symbolic link to nothing (broken,
or a loop) is an error naming the file, or, with ``skip_bad_samples``, a sample that is left out before planning,
counted and reported (once per sample).
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ...errors import DataError
from ...models.input_adapters import SEMSEG_IGNORE_INDEX
from ...storage import reading
from ..image_io import SKIP_HINT, decode_image_file, decode_single_channel, list_images

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Sample:
    class_index: int
    stem: str
    paths: dict[str, Path]


def read_modality(path: Path, modality: str, semseg_num_classes: int = 133) -> torch.Tensor:
    """Decode one file into its raw tensor.

    rgb: uint8 3 x H x W. depth: float32 1 x H x W, the 16-bit value / 2**16 (relative depth). semseg: int64
    H x W; void ids and ids outside [0, semseg_num_classes) become the ignore index (255), never clamped into a
    real class (that would teach the model wrong labels). Raises DataError naming the file when it cannot be
    decoded or has the wrong format.
    """
    if modality == "rgb":
        return decode_image_file(path, rgb=True)
    image = decode_single_channel(path, f"{modality} maps")
    if modality == "depth":
        if image.dtype != torch.uint16:
            raise DataError(
                f"{path} is an 8-bit image; depth must be a 16-bit PNG (depth = value / 2**16), since 8 bits would "
                f"quantise it into 256 steps. Re-export it as uint16; {SKIP_HINT}"
            )
        return image.to(torch.int32).float() / 65536.0
    if modality != "semseg":
        raise ValueError(f"unknown modality '{modality}'; choose from rgb, depth, semseg")
    labels = image[0].to(torch.int64)
    return torch.where(labels < semseg_num_classes, labels, SEMSEG_IGNORE_INDEX)


class MultiModalFolder(Dataset):
    """Samples of ``<root>/<split>/<modality>/<class>/<stem>.<ext>`` for the given modalities.

    ``dataset[i]`` returns {modality: raw tensor} (see :func:`read_modality`) with equal height and width across
    modalities. ``samples[i].class_index`` is the image-level class (sorted class-folder order). With
    ``skip_bad_samples``, problems found while scanning (a missing partner, an empty file or class folder, a link to
    nothing) leave the affected samples out and are listed in ``skipped``; problems found while loading still raise
    DataError, which :class:`~attent_vision.data.pretrain.views.PretrainView` turns into a skipped item.
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
        self.root = Path(root).expanduser()
        self.split = split
        self.modalities = list(modalities)
        self.skip_bad_samples = skip_bad_samples
        self.semseg_num_classes = semseg_num_classes
        self.skipped: list[str] = []  # what was left out at scan time (skip_bad_samples)
        with reading(self.root, "data.root"):  # an unreadable folder is "cannot read", never a run folder's problem
            self.samples, self.classes = self._scan()

    def _problem(self, message: str) -> None:
        if not self.skip_bad_samples:
            raise DataError(message)
        self.skipped.append(message)

    def _scan(self) -> tuple[list[Sample], list[str]]:
        split_dir = self.root / self.split
        if not self.root.is_dir():
            what = "is a file, not a folder" if self.root.exists() else "does not exist"
            raise DataError(f"data root {self.root} {what}; set data.root to the folder that holds "
                            f"'{self.split}/<modality>/<class>/...'")
        if not split_dir.is_dir():
            raise DataError(
                f"split folder {split_dir} does not exist; expected {self.root}/{self.split}/<modality>/<class>/... "
                f"(found: {sorted(p.name for p in self.root.iterdir() if p.is_dir())}); check data.root and the split"
            )
        found: dict[str, dict[tuple[str, str], Path]] = {}
        bad_links: dict[tuple[str, str], str] = {}  # (class, stem) -> a link to nothing in one of its modalities
        for m in self.modalities:
            mdir = split_dir / m
            if not mdir.is_dir():
                raise DataError(f"modality folder {mdir} is missing; add it or remove '{m}' from the model's domains")
            found[m] = {}
            class_dirs = sorted(p for p in mdir.iterdir() if p.is_dir())
            if not class_dirs:
                raise DataError(f"{mdir} has no class folders; expected {mdir}/<class>/<stem>.<ext> (put images in "
                                "one folder such as 'all/' if there are no classes)")
            for cdir in class_dirs:
                links: dict[str, str] = {}
                images = list_images(cdir, links)
                for stem, problem in links.items():
                    bad_links.setdefault((cdir.name, stem), problem)
                if not images and not links:
                    self._problem(f"class folder {cdir} holds no images (.png/.jpg/.jpeg); fill it or remove it, or "
                                  "set data.skip_bad_samples=true to leave out the samples it should pair with")
                found[m].update({(cdir.name, stem): p for stem, p in images.items()})

        keys = set().union(*[set(v) for v in found.values()])
        classes = sorted({c for c, _ in keys})
        class_index = {c: i for i, c in enumerate(classes)}
        samples = []
        for key in sorted(keys | set(bad_links)):
            if key in bad_links:  # one problem per sample: not also a missing partner in that modality
                self._problem(f"{bad_links[key]}; fix or remove it, or set data.skip_bad_samples=true to leave such "
                              "samples out (they are counted)")
                continue
            missing = [m for m in self.modalities if key not in found[m]]
            if missing:
                present = next(found[m][key] for m in self.modalities if key in found[m])
                where = split_dir / missing[0] / key[0] / f"{key[1]}.*"
                self._problem(f"{where} is missing: {present} has no '{missing[0]}' partner; {SKIP_HINT}")
                continue
            paths = {m: found[m][key] for m in self.modalities}
            # An empty file (an interrupted copy) is found here, with one stat per file, rather than when it fails
            # to load: skip mode then leaves it out before the teacher plans the run's epochs and steps.
            empty = next((p for p in paths.values() if p.stat().st_size == 0), None)
            if empty is not None:
                self._problem(f"{empty} is empty (0 bytes); {SKIP_HINT}")
                continue
            samples.append(Sample(class_index[key[0]], key[1], paths))
        if self.skipped:
            log.warning("%s/%s: left out %d samples or folders while scanning (first: %s)", self.root, self.split,
                        len(self.skipped), " | ".join(self.skipped[:3]))
        if not samples:
            left_out = (f": all {len(self.skipped)} were left out while scanning (first: {self.skipped[0]})"
                        if self.skipped else "")
            raise DataError(f"no complete samples found under {split_dir} for modalities {self.modalities}{left_out}; "
                            "fix or replace the files, or point data.root at an intact copy of the dataset")
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
                f"sample must have the same height and width; {SKIP_HINT}"
            )
        return out
