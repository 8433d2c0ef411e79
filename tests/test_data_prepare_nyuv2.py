"""The NYUv2 preparation command on tiny files with the release's internal structure: an HDF5 (MATLAB v7.3)
nyu_depth_v2_labeled.mat with column-major axes, classic-MATLAB splits.mat (1-based) and classMapping40.mat."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from attent_vision.data.downstream import DEPTH_SCALE, NYUv2
from attent_vision.data.downstream.prepare_nyuv2 import main

N, H, W = 5, 6, 8  # H != W, so a missing or wrong transpose cannot pass
TRAIN_1BASED, TEST_1BASED = [1, 3, 4], [2, 5]
NUM_RAW = 894


def write_release(folder):
    """Write the three release files; returns the frames as the user sees them (H x W (x 3)) and the mapping."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (N, H, W, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 9.9, (N, H, W)).astype(np.float32)
    raw = rng.integers(0, NUM_RAW + 1, (N, H, W)).astype(np.uint16)
    raw[0, 0, :2] = (0, NUM_RAW)  # unlabelled and the last raw class both occur
    # MATLAB writes column-major arrays, so h5py sees the axes reversed: images N x 3 x W x H, maps N x W x H.
    path = folder / "nyu_depth_v2_labeled.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f["images"] = rgb.transpose(0, 3, 2, 1)
        f["depths"] = depth.transpose(0, 2, 1)
        f["labels"] = raw.transpose(0, 2, 1)
    with open(path, "r+b") as f:  # MATLAB's text header lives in the HDF5 user block
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")
    mapping = (np.arange(NUM_RAW) * 7) % 40 + 1  # raw class k (1-based) -> mapping[k - 1] in 1..40
    scipy.io.savemat(folder / "splits.mat", {"trainNdxs": np.array(TRAIN_1BASED, float)[:, None],
                                             "testNdxs": np.array(TEST_1BASED, float)[:, None]})
    scipy.io.savemat(folder / "classMapping40.mat", {"mapClass": mapping[None, :].astype(float),
                                                     "className": np.array(["wall"] * 40, dtype=object)[None]})
    return rgb, depth, raw, mapping


def args(folder, out):
    return ["--mat", str(folder / "nyu_depth_v2_labeled.mat"), "--splits", str(folder / "splits.mat"),
            "--mapping", str(folder / "classMapping40.mat"), "--out", str(out)]


def test_preparation_reproduces_the_arrays_with_transposes_and_1_based_splits(tmp_path):
    rgb, depth, raw, mapping = write_release(tmp_path)
    out = tmp_path / "nyuv2"
    assert main(args(tmp_path, out) + ["--no-progress"]) == 0
    for split, frames in (("train", TRAIN_1BASED), ("test", TEST_1BASED)):
        names = sorted(p.name for p in (out / split / "rgb" / "data").iterdir())
        assert names == [f"{i - 1:04d}.png" for i in frames]  # 0-based frame numbers
        for i in (k - 1 for k in frames):
            name = f"{i:04d}.png"
            assert np.array_equal(np.asarray(Image.open(out / split / "rgb" / "data" / name)), rgb[i])
            stored_depth = np.asarray(Image.open(out / split / "depth" / "data" / name))
            assert stored_depth.dtype == np.uint16
            assert np.abs(stored_depth / DEPTH_SCALE - depth[i]).max() <= 0.5 / DEPTH_SCALE + 1e-6
            semseg = Image.open(out / split / "semseg" / "data" / name)
            assert semseg.mode == "P"
            expected = np.where(raw[i] == 0, 0, mapping[np.maximum(raw[i].astype(int) - 1, 0)])
            assert np.array_equal(np.asarray(semseg), expected)
    # The loader reads the result back: metres, and labels 1..40 -> 0..39 with unlabelled ignored.
    item = NYUv2(out, "train", ["rgb", "depth", "semseg"])[0]  # frame 0000
    assert torch.allclose(item["depth"][0], torch.from_numpy(depth[0]), atol=1e-4)
    assert item["semseg"][0, 0] == 255 and item["semseg"][0, 1] == int(mapping[NUM_RAW - 1]) - 1
    assert bool(item["valid"].all())


def test_command_line_shows_progress_and_reports_bad_inputs(tmp_path):
    write_release(tmp_path)
    done = subprocess.run([sys.executable, "-m", "attent_vision.data.downstream.prepare_nyuv2",
                           *args(tmp_path, tmp_path / "o")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "NYUv2 frames" in done.stderr and "5/5" in done.stderr
    assert "wrote 3 train frames, 2 test frames" in done.stderr


@pytest.mark.parametrize("problem", ["splits beyond the frames", "classic mat as labelled file", "no mapping"])
def test_bad_release_files_give_an_actionable_error(tmp_path, problem, capsys):
    write_release(tmp_path)
    if problem == "splits beyond the frames":
        scipy.io.savemat(tmp_path / "splits.mat", {"trainNdxs": np.array([[1], [6]]), "testNdxs": np.array([[2]])})
        says = "'trainNdxs' holds frame numbers outside 1..5"
    elif problem == "classic mat as labelled file":
        scipy.io.savemat(tmp_path / "nyu_depth_v2_labeled.mat", {"images": np.zeros((2, 2))})
        says = "nyu_depth_v2_labeled.mat is not a MATLAB v7.3 (HDF5) file"
    else:
        scipy.io.savemat(tmp_path / "classMapping40.mat", {"other": np.zeros(3)})
        says = "has no 'mapClass' variable; pass classMapping40.mat with --mapping"
    assert main(args(tmp_path, tmp_path / "o") + ["--no-progress"]) == 2
    assert says in capsys.readouterr().err
