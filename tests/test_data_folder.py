"""The pretraining folder layout (<root>/<split>/<modality>/<class>/<stem>.<ext>): pairing by stem, decoded dtypes and
ranges, and every kind of bad input, each with an actionable error and, opt-in, skipped and counted instead."""

import numpy as np
import pytest
import torch
from PIL import Image

from attent_vision.data.pretrain.folder import MultiModalFolder, read_modality
from attent_vision.data.pretrain.views import PretrainView
from attent_vision.data.skipping import collate_skipping_bad
from attent_vision.errors import DataError

H, W = 24, 32
# (class, stem, rgb extension): mixed-case extensions as in real pseudo-labelled folders
SAMPLES = [("n01", "a1", ".JPEG"), ("n01", "a2", ".png"), ("n02", "b1", ".jpg"), ("n02", "b2", ".PNG")]
MODALITIES = ["rgb", "depth", "semseg"]


def write_sample(root, cls, stem, ext, ident, size=(H, W)):
    """One sample whose three files all encode ``ident``: rgb grey level 20 * ident, depth 1000 * ident,
    semseg ident."""
    h, w = size
    for modality, array, suffix in (
        ("rgb", np.full((h, w, 3), 20 * ident, np.uint8), ext),
        ("depth", np.full((h, w), 1000 * ident, np.uint16), ".png" if ident % 2 else ".PNG"),
        ("semseg", np.full((h, w), ident, np.uint8), ".png"),
    ):
        folder = root / "train" / modality / cls
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(folder / f"{stem}{suffix}", quality=100)


@pytest.fixture
def folder_root(tmp_path):
    root = tmp_path / "pretrain"
    for ident, (cls, stem, ext) in enumerate(SAMPLES, start=1):
        write_sample(root, cls, stem, ext, ident)
    return root


def identity(sample: dict) -> set[int]:
    """The ident each modality of a loaded sample encodes (one value when they are paired correctly)."""
    return {round(sample["rgb"].float().mean().item() / 20), round(sample["depth"].mean().item() * 65536 / 1000),
            int(sample["semseg"].unique().item())}


def test_pairs_modalities_by_stem_with_case_insensitive_extensions(folder_root):
    # Files that are not images, and macOS '._' metadata files, are not samples.
    (folder_root / "train" / "rgb" / "n01" / "._a1.JPEG").write_bytes(b"\x00\x05\x16\x07")
    (folder_root / "train" / "depth" / "n01" / "notes.txt").write_text("x")
    ds = MultiModalFolder(folder_root, "train", MODALITIES)
    assert len(ds) == 4 and ds.classes == ["n01", "n02"]
    assert [s.class_index for s in ds.samples] == [0, 0, 1, 1]
    assert [s.stem for s in ds.samples] == ["a1", "a2", "b1", "b2"]
    for i in range(len(ds)):
        item = ds[i]
        assert identity(item) == {i + 1}
        assert item["rgb"].shape == (3, H, W) and item["rgb"].dtype == torch.uint8
        assert item["depth"].shape == (1, H, W) and item["depth"].dtype == torch.float32
        assert 0 <= item["depth"].min() and item["depth"].max() < 1
        assert item["semseg"].shape == (H, W) and item["semseg"].dtype == torch.int64


def test_missing_stem_is_an_error_naming_the_file_or_a_skipped_sample_without_a_shift(folder_root):
    (folder_root / "train" / "depth" / "n01" / "a1.png").unlink()
    with pytest.raises(DataError, match=r"depth/n01/a1\.\*.*skip_bad_samples"):
        MultiModalFolder(folder_root, "train", MODALITIES)
    ds = MultiModalFolder(folder_root, "train", MODALITIES, skip_bad_samples=True)
    assert len(ds) == 3 and len(ds.skipped) == 1 and "a1" in ds.skipped[0]
    # The remaining samples keep their own partners (no shift by position).
    assert [identity(ds[i]) for i in range(3)] == [{2}, {3}, {4}]


def test_rgb_only_folders_need_no_other_modality(folder_root):
    ds = MultiModalFolder(folder_root, "train", ["rgb"])
    assert len(ds) == 4 and set(ds[0]) == {"rgb"}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_semseg_ids_beyond_the_classes_become_ignore_never_a_real_class(tmp_path, dtype):
    ids = np.array([[0, 5, 132, 133], [134, 200, 254, 255]], dtype)
    if dtype == np.uint16:
        ids[1, 1] = 1000
    Image.fromarray(ids).save(tmp_path / "s.png")
    labels = read_modality(tmp_path / "s.png", "semseg", semseg_num_classes=133)
    assert labels.dtype == torch.int64 and labels.tolist() == [[0, 5, 132, 255], [255, 255, 255, 255]]


def test_depth_keeps_all_16_bits(tmp_path):
    Image.fromarray(np.array([[0, 1, 40000, 65535]], np.uint16)).save(tmp_path / "d.png")
    depth = read_modality(tmp_path / "d.png", "depth")
    assert torch.equal(depth, torch.tensor([[[0, 1, 40000, 65535]]], dtype=torch.float32) / 65536)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# Problems found when a sample is loaded: (change to the folder, file the error must name, what it must say)
LOAD_PROBLEMS = {
    "truncated image": (lambda r: _truncate(r / "train/rgb/n01/a2.png"), "rgb/n01/a2.png", "cannot decode"),
    "unreadable image": (lambda r: (r / "train/rgb/n01/a2.png").write_bytes(b"not an image"), "rgb/n01/a2.png",
                         "cannot decode"),
    "8-bit depth": (lambda r: Image.fromarray(np.zeros((H, W), np.uint8)).save(r / "train/depth/n01/a2.PNG"),
                    "depth/n01/a2.PNG", "16-bit PNG"),
    "rgb semseg": (lambda r: Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(r / "train/semseg/n01/a2.png"),
                   "semseg/n01/a2.png", "single-channel"),
    "sizes differ": (lambda r: Image.fromarray(np.zeros((H, W + 8), np.uint8)).save(r / "train/semseg/n01/a2.png"),
                     "rgb/n01/a2.png", "same height and width"),
}


@pytest.mark.parametrize("problem", sorted(LOAD_PROBLEMS))
def test_a_sample_that_fails_to_load_names_its_file_or_is_skipped_and_reported(folder_root, problem):
    change, named, says = LOAD_PROBLEMS[problem]
    change(folder_root)
    ds = MultiModalFolder(folder_root, "train", MODALITIES)
    with pytest.raises(DataError, match=says) as e:
        ds[1]
    assert named in str(e.value) and ("skip_bad_samples" in str(e.value) or problem == "sizes differ")
    assert identity(ds[0]) == {1}  # the other samples still load

    # The training view stops with the same error unless skipping is on; with it, the batch loses that sample
    # and carries its message (which names the file) for the epoch report.
    view = PretrainView(ds, image_size=16, augment=True, seed=0)
    with pytest.raises(DataError):
        view[1]
    skipping = MultiModalFolder(folder_root, "train", MODALITIES, skip_bad_samples=True)
    view = PretrainView(skipping, image_size=16, augment=True, seed=0)
    batch = collate_skipping_bad([view[(i, 0, 1.0)] for i in range(4)])
    assert batch["index"].tolist() == [0, 2, 3] and batch["bad_index"] == [1]
    assert len(batch["bad"]) == 1 and named in batch["bad"][0]
    assert batch["rgb"].shape == (3, 3, 16, 16) and batch["semseg"].shape == (3, 4, 4)


def test_empty_class_folder_is_an_error_or_skipped(folder_root):
    (folder_root / "train" / "depth" / "n03").mkdir()
    with pytest.raises(DataError, match=r"depth/n03 holds no images.*skip_bad_samples"):
        MultiModalFolder(folder_root, "train", MODALITIES)
    ds = MultiModalFolder(folder_root, "train", MODALITIES, skip_bad_samples=True)
    assert len(ds) == 4 and "n03" in ds.skipped[0]


def test_two_files_with_one_stem_are_ambiguous(folder_root):
    Image.fromarray(np.zeros((H, W), np.uint8)).save(folder_root / "train" / "semseg" / "n02" / "b1.jpg")
    with pytest.raises(DataError, match=r"n02/b1\.jpg and b1\.png share the stem"):
        MultiModalFolder(folder_root, "train", MODALITIES)


def test_wrong_root_split_or_modality_folder_says_what_to_set(folder_root, tmp_path):
    with pytest.raises(DataError, match=r"data root .*nowhere does not exist; set data.root"):
        MultiModalFolder(tmp_path / "nowhere", "train", MODALITIES)
    with pytest.raises(DataError, match=r"split folder .*/val does not exist.*found: \['train'\]"):
        MultiModalFolder(folder_root, "val", MODALITIES)
    (folder_root / "train" / "depth").rename(folder_root / "train" / "depths")
    with pytest.raises(DataError, match=r"modality folder .*train/depth is missing"):
        MultiModalFolder(folder_root, "train", MODALITIES)


def test_a_root_that_is_a_file_or_a_broken_link_is_named_as_such(folder_root, tmp_path):
    file_root = tmp_path / "root.txt"
    file_root.write_text("not a folder")
    with pytest.raises(DataError, match=r"root\.txt is a file, not a folder; set data.root"):
        MultiModalFolder(file_root, "train", MODALITIES)
    link = folder_root / "train" / "rgb" / "n01" / "a3.png"
    link.symlink_to(tmp_path / "gone.png")  # used to read as "has no 'rgb' partner"
    with pytest.raises(DataError, match=r"a3\.png is a broken symbolic link \(to .*gone\.png\); fix or remove it"):
        MultiModalFolder(folder_root, "train", MODALITIES)
