"""Prepare NYUv2 from its release files into the layout data/downstream/nyuv2.py reads.

    python -m attent_vision.data.downstream.prepare_nyuv2 --mat nyu_depth_v2_labeled.mat --splits splits.mat \
        --mapping classMapping40.mat --out /data/nyuv2          (also installed as: attent-prepare-nyuv2 ...)

Inputs (the user's own copies; nothing is downloaded):
- ``nyu_depth_v2_labeled.mat``: MATLAB v7.3, i.e. HDF5. MATLAB stores arrays column-major, so h5py shows them
  with reversed axes: ``images`` N x 3 x W x H (uint8), ``depths`` N x W x H (metres), ``labels`` N x W x H (894
  raw classes, 0 unlabelled). Each frame is transposed back to H x W (x 3).
- ``splits.mat`` (classic MATLAB): ``trainNdxs`` and ``testNdxs``, 1-based frame numbers (795 and 654).
- ``classMapping40.mat`` (classic MATLAB): ``mapClass``, 1 x 894, raw class k (1-based) -> NYUv2-40 class.

Output: ``<out>/{train,test}/{rgb,depth,semseg}/data/{idx:04d}.png`` where idx is the 0-based frame number in the
.mat file (as MultiMAE's script names them); depth as uint16 metres * 6553.6 (rounded, clipped to 0..65535, i.e.
10 m), semseg as a palette PNG of 0..40. Frames are read one at a time, so memory stays small.

h5py and scipy come with the ``nyuv2`` extra (pip install 'attent-vision[nyuv2]'); they are imported when the
command runs, so the rest of the package works without them.
"""

from __future__ import annotations  # h5py.File in signatures without importing h5py

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from tqdm import tqdm

from ...errors import DataError, UserError
from ...extras import require
from .nyuv2 import NUM_CLASSES, depth_to_uint16, semseg_palette

if TYPE_CHECKING:
    import h5py

log = logging.getLogger(__name__)

COMMAND = "attent-prepare-nyuv2"

SPLIT_KEYS = {"train": "trainNdxs", "test": "testNdxs"}


def read_splits(path: Path, num_frames: int) -> dict[str, np.ndarray]:
    """0-based frame indices per split from splits.mat (stored 1-based)."""
    mat = _load_classic_mat(path)
    splits = {}
    for split, key in SPLIT_KEYS.items():
        if key not in mat:
            found = sorted(k for k in mat if not k.startswith("__"))
            raise DataError(f"{path} has no '{key}' variable (found {found}); pass the NYUv2 splits.mat with --splits")
        indices = np.asarray(mat[key]).astype(np.int64).ravel() - 1
        if indices.size and (indices.min() < 0 or indices.max() >= num_frames):
            raise DataError(f"{path}: '{key}' holds frame numbers outside 1..{num_frames} (the .mat file's frame "
                            "count); the splits file does not belong to this .mat file")
        splits[split] = indices
    return splits


def read_class_mapping(path: Path) -> np.ndarray:
    """Lookup table raw label -> NYUv2-40 label, uint8 of length 895 (index 0, unlabelled, stays 0)."""
    mat = _load_classic_mat(path)
    if "mapClass" not in mat:
        raise DataError(f"{path} has no 'mapClass' variable; pass classMapping40.mat with --mapping")
    mapping = np.asarray(mat["mapClass"]).astype(np.int64).ravel()
    if mapping.size and (mapping.min() < 0 or mapping.max() > NUM_CLASSES):
        raise DataError(f"{path}: 'mapClass' maps to ids outside 0..{NUM_CLASSES}; pass the 40-class mapping")
    return np.concatenate([[0], mapping]).astype(np.uint8)


def _load_classic_mat(path: Path) -> dict:
    scipy_io = require("scipy.io", "nyuv2", COMMAND)
    if not path.is_file():
        raise DataError(f"{path} does not exist; pass the path of the file from the NYUv2 release")
    try:
        return scipy_io.loadmat(str(path))
    except Exception as e:
        raise DataError(f"cannot read {path} as a MATLAB file ({str(e).splitlines()[0][:120]}); pass the original "
                        "file from the NYUv2 release") from None


def open_labeled_mat(path: Path) -> h5py.File:
    h5py = require("h5py", "nyuv2", COMMAND)
    if not path.is_file():
        raise DataError(f"{path} does not exist; pass the path of nyu_depth_v2_labeled.mat with --mat")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise DataError(f"{path} is not a MATLAB v7.3 (HDF5) file; pass the original nyu_depth_v2_labeled.mat "
                        "(about 2.8 GB)") from None
    missing = [k for k in ("images", "depths", "labels") if k not in f]
    if missing:
        f.close()
        raise DataError(f"{path} has no dataset(s) {missing}; pass the labelled NYUv2 file nyu_depth_v2_labeled.mat")
    return f


def frame(f: h5py.File, i: int, mapping: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame i as (rgb uint8 H x W x 3, depth float32 H x W in metres, semseg uint8 H x W in 0..40)."""
    rgb = np.transpose(f["images"][i], (2, 1, 0))  # 3 x W x H -> H x W x 3
    depth = np.asarray(f["depths"][i], dtype=np.float32).T  # W x H -> H x W
    raw = np.asarray(f["labels"][i]).T.astype(np.int64)
    if raw.max(initial=0) >= len(mapping):
        raise DataError(f"frame {i} has raw label {int(raw.max())}, beyond the {len(mapping) - 1} classes of the "
                        "mapping file; pass the matching classMapping40.mat")
    return np.ascontiguousarray(rgb, dtype=np.uint8), depth, mapping[raw]


def prepare_nyuv2(mat: Path, splits: Path, mapping: Path, out: Path, progress: bool = True) -> dict[str, int]:
    """Write the prepared layout under ``out``; returns the number of frames written per split."""
    mat, splits, mapping, out = Path(mat), Path(splits), Path(mapping), Path(out)
    for module in ("h5py", "scipy.io"):  # both before any work: one install fixes it
        require(module, "nyuv2", COMMAND)
    lookup = read_class_mapping(mapping)
    with open_labeled_mat(mat) as f:
        num_frames = f["images"].shape[0]
        split_indices = read_splits(splits, num_frames)
        palette = semseg_palette()
        counts = {}
        total = sum(len(v) for v in split_indices.values())
        with tqdm(total=total, desc="NYUv2 frames", unit="frame", disable=not progress) as bar:
            for split, indices in split_indices.items():
                folders = {m: out / split / m / "data" for m in ("rgb", "depth", "semseg")}
                for folder in folders.values():
                    folder.mkdir(parents=True, exist_ok=True)
                for i in indices.tolist():
                    rgb, depth, semseg = frame(f, i, lookup)
                    name = f"{i:04d}.png"
                    Image.fromarray(rgb).save(folders["rgb"] / name)
                    Image.fromarray(depth_to_uint16(depth)).save(folders["depth"] / name)
                    labels = Image.fromarray(semseg, mode="P")
                    labels.putpalette(palette)
                    labels.save(folders["semseg"] / name)
                    bar.update(1)
                counts[split] = len(indices)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="attent-prepare-nyuv2",
        description="Convert the NYUv2 release files into <out>/{train,test}/{rgb,depth,semseg}/data/<idx>.png",
    )
    parser.add_argument("--mat", type=Path, required=True, help="nyu_depth_v2_labeled.mat (MATLAB v7.3 / HDF5)")
    parser.add_argument("--splits", type=Path, required=True, help="splits.mat (trainNdxs, testNdxs; 1-based)")
    parser.add_argument("--mapping", type=Path, required=True, help="classMapping40.mat (mapClass: 894 -> 40 classes)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (then: data.root=<out> or $NYUV2_ROOT)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        counts = prepare_nyuv2(args.mat, args.splits, args.mapping, args.out, progress=not args.no_progress)
    except UserError as e:  # bad input files, or the nyuv2 extra not installed
        print(f"error: {e}", file=sys.stderr)
        return 2
    log.info("wrote %s to %s", ", ".join(f"{n} {s} frames" for s, n in counts.items()), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
