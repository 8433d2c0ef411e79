"""The prepared NYUv2 layout: depth in metres from uint16 * 1/6553.6, 40 classes with 0 ignored, the validity mask,
and bad frames with errors that name the file."""

import numpy as np
import pytest
import torch
from PIL import Image

from attent_vision.data.downstream import DEPTH_SCALE, NYUV2_ENV, NYUv2, collate_skipping_bad
from attent_vision.errors import DataError

H, W = 12, 16


def frame_arrays(i: int):
    rng = np.random.default_rng(i)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    depth = rng.integers(1, 65536, (H, W)).astype(np.uint16)
    depth[0, :3] = 0  # no measurement
    semseg = rng.integers(0, 41, (H, W)).astype(np.uint8)
    semseg[1, :] = np.arange(W) % 41  # make sure 0 and 40 both occur
    semseg[1, 0], semseg[1, 1] = 0, 40
    mask = np.full((H, W), 255, np.uint8)
    mask[-1, -2:] = 0
    return {"rgb": rgb, "depth": depth, "semseg": semseg, "mask_valid": mask}


def save(path, array, palette=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array, mode="P") if palette else Image.fromarray(array)
    if palette:
        image.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
    image.save(path)


@pytest.fixture
def nyu(tmp_path):
    root = tmp_path / "nyuv2"
    for split, frames in (("train", [0, 2, 3]), ("test", [1])):
        for i in frames:
            for m, array in frame_arrays(i).items():
                save(root / split / m / "data" / f"{i:04d}.png", array, palette=m == "semseg")
    return root


def test_frames_decode_to_metres_labels_and_validity(nyu):
    ds = NYUv2(nyu, "train", ["rgb", "depth", "semseg"])
    assert len(ds) == 3 and len(NYUv2(nyu, "test", ["rgb"])) == 1
    item = ds[1]  # frame 0002
    stored = frame_arrays(2)
    assert set(item) == {"rgb", "depth", "semseg", "valid"}
    assert item["rgb"].dtype == torch.uint8 and torch.equal(
        item["rgb"], torch.from_numpy(stored["rgb"]).permute(2, 0, 1))
    assert item["depth"].shape == (1, H, W) and item["depth"].dtype == torch.float32
    expected_depth = torch.from_numpy(stored["depth"].astype(np.float32)) / DEPTH_SCALE
    assert torch.allclose(item["depth"][0], expected_depth) and float(item["depth"].max()) <= 10.0
    labels = torch.from_numpy(stored["semseg"].astype(np.int64))
    assert item["semseg"].dtype == torch.int64 and torch.equal(
        item["semseg"], torch.where(labels == 0, 255, labels - 1))
    assert item["semseg"][1, 0] == 255 and item["semseg"][1, 1] == 39
    expected_valid = ((torch.from_numpy(stored["depth"].astype(np.int64)) > 0)
                      & torch.from_numpy(stored["mask_valid"] > 0))
    assert item["valid"].dtype == torch.bool and torch.equal(item["valid"][0], expected_valid)
    assert not item["valid"][0, 0, 0] and not item["valid"][0, -1, -1] and item["valid"][0, 5, 5]


def test_modality_subsets_and_optional_mask(nyu):
    import shutil

    assert set(NYUv2(nyu, "train", ["semseg"])[0]) == {"semseg"}
    shutil.rmtree(nyu / "train" / "mask_valid")
    item = NYUv2(nyu, "train", ["depth"])[0]
    assert set(item) == {"depth", "valid"} and torch.equal(item["valid"], item["depth"] > 0)
    with pytest.raises(ValueError, match="normal"):
        NYUv2(nyu, "train", ["rgb", "normal"])


def test_root_from_env_var_and_wrong_root(nyu, monkeypatch, tmp_path):
    monkeypatch.setenv(NYUV2_ENV, str(nyu))
    assert len(NYUv2(None, "test", ["rgb"])) == 1
    with pytest.raises(DataError, match=r"NYUv2 folder .*elsewhere does not exist; set data.root \(or \$NYUV2_ROOT\)"):
        NYUv2(tmp_path / "elsewhere", "train", ["rgb"])
    with pytest.raises(DataError, match=r"split folder .*/val does not exist \(found: \['test', 'train'\]\)"):
        NYUv2(nyu, "val", ["rgb"])


def test_missing_partner_is_an_error_or_a_skipped_frame(nyu):
    (nyu / "train" / "depth" / "data" / "0002.png").unlink()
    with pytest.raises(DataError, match=r"depth/data/0002\.png is missing: .*rgb/data/0002\.png has no 'depth'"):
        NYUv2(nyu, "train", ["rgb", "depth"])
    ds = NYUv2(nyu, "train", ["rgb", "depth"], skip_bad_samples=True)
    assert len(ds) == 2 and "0002" in ds.skipped[0]
    assert torch.equal(ds[1]["rgb"], torch.from_numpy(frame_arrays(3)["rgb"]).permute(2, 0, 1))  # no shift
    assert len(NYUv2(nyu, "train", ["rgb", "semseg"])) == 3  # depth is not needed for segmentation


BAD_FRAMES = {
    "8-bit depth": ("depth", lambda p: save(p, np.ones((H, W), np.uint8)), "16-bit PNG"),
    "id above 40": ("semseg", lambda p: save(p, np.full((H, W), 41, np.uint8), palette=True),
                    r"ids \[41\] outside 0..40"),
    "sizes differ": ("semseg", lambda p: save(p, np.ones((H, W + 1), np.uint8), palette=True), "same height and width"),
    "truncated": ("rgb", lambda p: p.write_bytes(p.read_bytes()[:60]), "cannot decode"),
}


@pytest.mark.parametrize("problem", sorted(BAD_FRAMES))
def test_bad_frame_names_its_file_or_is_skipped_and_reported(nyu, problem):
    modality, change, says = BAD_FRAMES[problem]
    path = nyu / "train" / modality / "data" / "0003.png"
    change(path)
    ds = NYUv2(nyu, "train", ["rgb", "depth", "semseg"])
    with pytest.raises(DataError, match=says) as e:
        ds[2]
    assert "0003.png" in str(e.value)
    skipping = NYUv2(nyu, "train", ["rgb", "depth", "semseg"], skip_bad_samples=True)
    batch = collate_skipping_bad([skipping[i] for i in range(3)])
    assert batch["bad_index"] == [2] and "0003.png" in batch["bad"][0]
    assert batch["depth"].shape == (2, 1, H, W) and batch["semseg"].shape == (2, H, W)
