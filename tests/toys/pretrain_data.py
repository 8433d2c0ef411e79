"""A pretraining dataset kind from outside the package, registered through the registry alone: ``data.name=toy_npz``
reads ``<data.root>/<split>.npz``, one file per split holding every sample's arrays (a format of its own, not the
folder layout). Loaded by ``extensions=[toys.pretrain_data]``; tests/test_extension_points.py runs it.

This is the whole extension: a class that says how the data is found and read, and a sample source with the
members data/pretrain/source.py lists.
"""

import logging
from pathlib import Path

import numpy as np
import torch

from attent_vision.data.pretrain.kinds import PRETRAIN_DATASETS, PretrainDataset
from attent_vision.errors import DataError

log = logging.getLogger(__name__)


class NpzSplit:
    """One split: rgb uint8 N x 3 x H x W, depth float32 N x 1 x H x W, semseg uint8 N x H x W."""

    def __init__(self, path: Path, modalities: list[str], skip_bad_samples: bool):
        if not path.is_file():
            raise DataError(f"{path} does not exist; write it with toys.pretrain_data.write_split")
        with np.load(path) as arrays:
            self.arrays = {m: arrays[m] for m in modalities}
        self.skip_bad_samples = skip_bad_samples
        self.skipped: list[str] = []  # nothing is left out while reading: the file is whole or absent

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        out = {m: torch.from_numpy(a[index].copy()) for m, a in self.arrays.items()}
        if "semseg" in out:
            out["semseg"] = out["semseg"].long()
        return out


@PRETRAIN_DATASETS.register()
class ToyNpzDataset(PretrainDataset):
    name = "toy_npz"
    description = "one .npz file per split under data.root (a test's own format)"
    takes_root = True
    missing_root = "set data.root=/folder/with/<split>.npz"

    def folder(self, root: Path, split: str, modalities: list[str], cfg) -> NpzSplit:
        source = NpzSplit(Path(root) / f"{split}.npz", modalities, cfg.data.skip_bad_samples)
        log.info("toy_npz: %s split, %d samples", split, len(source))
        return source


def write_split(root: Path, split: str, count: int, size: int = 40, seed: int = 0) -> Path:
    """``count`` random scenes of side ``size`` in ``<root>/<split>.npz``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{split}.npz"
    np.savez(path, rgb=rng.integers(0, 256, (count, 3, size, size), dtype=np.uint8),
             depth=rng.random((count, 1, size, size), dtype=np.float32),
             semseg=rng.integers(0, 133, (count, size, size), dtype=np.uint8))
    return path
