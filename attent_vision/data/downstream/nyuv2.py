"""NYUv2 (Silberman et al.) in the layout MultiMAE's preparation writes (see prepare_nyuv2.py beside this file):

    <root>/{train,test}/rgb/data/{idx:04d}.png         RGB (640 x 480 for the real data)
    <root>/{train,test}/depth/data/{idx:04d}.png       uint16, metres * 6553.6 (2**16 / 10 m)
    <root>/{train,test}/semseg/data/{idx:04d}.png      8-bit ('P' mode) 0..40, 0 = unlabelled
    <root>/{train,test}/mask_valid/data/{idx:04d}.png  optional: non-zero (255) where depth is valid

795 train and 654 test frames; files of one frame are paired by name.
"""

from pathlib import Path

import numpy as np
import torch

from ...errors import DataError
from ..image_io import SKIP_HINT, decode_image_file, decode_single_channel, list_images
from ..roots import resolve_root
from ..skipping import SkippingDataset

NYUV2_ENV = "NYUV2_ROOT"
DEPTH_SCALE = 6553.6  # stored uint16 per metre: 2**16 / 10, so 10 m is the top of the range
NUM_CLASSES = 40
IGNORE_INDEX = 255  # unlabelled pixels (stored 0) become this; labels 1..40 become 0..39
MODALITIES = ("rgb", "depth", "semseg")
MASK_FOLDER = "mask_valid"
EXPECTED = "train/ and test/, each with rgb/data/, depth/data/, semseg/data/ (prepare them with attent-prepare-nyuv2)"


def semseg_to_labels(stored: torch.Tensor, path: Path | str) -> torch.Tensor:
    """Stored NYUv2-40 ids (H x W, 0..40) -> int64 labels: 0 -> 255 (ignore), 1..40 -> 0..39. Any id above 40 is a
    DataError naming the file (a 894-class raw label map or a colour-coded PNG would otherwise train silently)."""
    ids = stored.to(torch.int64)
    if bool((ids > NUM_CLASSES).any()):
        bad = sorted(set(ids[ids > NUM_CLASSES].unique().tolist()))[:5]
        raise DataError(f"{path} holds semseg ids {bad} outside 0..{NUM_CLASSES} (0 unlabelled, 1..40 the NYUv2-40 "
                        f"classes); map raw labels with classMapping40.mat (attent-prepare-nyuv2 does); {SKIP_HINT}")
    return torch.where(ids == 0, IGNORE_INDEX, ids - 1)


class NYUv2(SkippingDataset):
    """Frames of one prepared NYUv2 split.

    Args:
        root: the prepared folder (holding train/ and test/); None = $NYUV2_ROOT.
        split: 'train' or 'test'.
        modalities: which of rgb, depth, semseg to load.
        skip_bad_samples: leave out frames with a missing file (listed in ``skipped``) and return
            ``{'index', 'bad'}`` for frames whose files fail to load (see data/skipping.py).

    Item, for the requested modalities: {'rgb': uint8 3 x H x W, 'depth': float32 1 x H x W in metres,
    'semseg': int64 H x W (0..39, 255 ignore), 'valid': bool 1 x H x W (with depth: depth > 0, and mask_valid
    non-zero when the split has that folder)}.
    """

    num_classes = NUM_CLASSES  # semseg classes (labels 0..39)

    def __init__(self, root: str | Path | None, split: str, modalities=MODALITIES, *, skip_bad_samples: bool = False):
        self.root = resolve_root(root, NYUV2_ENV, "NYUv2", EXPECTED)
        self.split = split
        self.modalities = list(modalities)
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if unknown or not self.modalities:
            raise ValueError(f"NYUv2 modalities {self.modalities}: choose a non-empty subset of {list(MODALITIES)}")
        self.skip_bad_samples = skip_bad_samples
        self.skipped: list[str] = []
        split_dir = self.root / split
        if not split_dir.is_dir():
            found = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            raise DataError(f"split folder {split_dir} does not exist (found: {found}); point data.root at the "
                            f"prepared NYUv2 folder that holds {EXPECTED}")
        folders = {m: split_dir / m / "data" for m in self.modalities}
        if "depth" in self.modalities and (split_dir / MASK_FOLDER / "data").is_dir():
            folders[MASK_FOLDER] = split_dir / MASK_FOLDER / "data"
        files = {}
        for m, folder in folders.items():
            if not folder.is_dir():
                raise DataError(f"{folder} does not exist; expected {split_dir}/{m}/data/<idx>.png (prepare the data "
                                f"with attent-prepare-nyuv2, or drop '{m}' from the modalities)")
            files[m] = list_images(folder)
            if not files[m]:
                raise DataError(f"{folder} holds no images; prepare the data with attent-prepare-nyuv2")
        self.samples: list[dict[str, Path]] = []
        for stem in sorted(set().union(*files.values())):
            missing = [m for m in folders if stem not in files[m]]
            if missing:
                present = next(files[m][stem] for m in folders if stem in files[m])
                self.scan_problem(f"{folders[missing[0]] / stem}.png is missing: {present} has no '{missing[0]}' "
                                  f"partner; {SKIP_HINT}")
                continue
            self.samples.append({m: files[m][stem] for m in folders})
        self.log_skipped(split_dir)
        if not self.samples:
            raise DataError(f"no complete frames under {split_dir} for modalities {self.modalities}")

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> dict:
        paths = self.samples[index]
        out = {}
        if "rgb" in paths:
            out["rgb"] = decode_image_file(paths["rgb"], rgb=True)
        if "depth" in paths:
            stored = decode_single_channel(paths["depth"], "NYUv2 depth")
            if stored.dtype != torch.uint16:
                raise DataError(f"{paths['depth']} is an 8-bit image; NYUv2 depth must be a 16-bit PNG holding metres "
                                f"* {DEPTH_SCALE} (re-run attent-prepare-nyuv2); {SKIP_HINT}")
            out["depth"] = stored.to(torch.int32).to(torch.float32) / DEPTH_SCALE
            out["valid"] = out["depth"] > 0
        if "semseg" in paths:
            out["semseg"] = semseg_to_labels(decode_single_channel(paths["semseg"], "NYUv2 semseg")[0], paths["semseg"])
        mask = decode_single_channel(paths[MASK_FOLDER], "mask_valid") if MASK_FOLDER in paths else None
        sizes = {m: tuple(t.shape[-2:]) for m, t in out.items() if m != "valid"}
        if mask is not None:
            sizes[MASK_FOLDER] = tuple(mask.shape[-2:])
        if len(set(sizes.values())) > 1:
            raise DataError(f"files of frame {paths[self.modalities[0]]} differ in size {sizes}; all files of a frame "
                            f"must have the same height and width; {SKIP_HINT}")
        if mask is not None:
            out["valid"] &= mask != 0
        return out


def depth_to_uint16(depth_m: np.ndarray) -> np.ndarray:
    """Metres -> uint16 metres * 6553.6, rounded and clipped (beyond 10 m saturates instead of wrapping)."""
    return np.clip(np.rint(depth_m.astype(np.float64) * DEPTH_SCALE), 0, 65535).astype(np.uint16)


def semseg_palette() -> list[int]:
    """768 palette entries: black for unlabelled, then 40 distinguishable hues (only for viewing the PNGs)."""
    import colorsys

    colours = [(0, 0, 0)] + [tuple(int(255 * c) for c in colorsys.hls_to_rgb(i / NUM_CLASSES, 0.6, 0.65))
                             for i in range(NUM_CLASSES)]
    flat = [v for rgb in colours for v in rgb]
    return flat + [0] * (768 - len(flat))
