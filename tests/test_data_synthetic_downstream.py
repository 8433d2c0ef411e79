"""The embedded fine-tuning data: written once in the real ImageNet-S50 and NYUv2 layouts, read by the real loaders,
labels consistent with the rendered scenes; and the data configs that select it or the real datasets."""

from dataclasses import fields

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

from attent_vision.config.downstream_data import DownstreamDataConfig
from attent_vision.data.downstream import (
    ImageNetS50Classification,
    ImageNetS50Segmentation,
    NYUv2,
    SyntheticDownstreamSettings,
    ensure_synthetic_downstream,
)
from attent_vision.data.downstream.datasets import downstream_datasets
from attent_vision.errors import ConfigError

from conftest import FINETUNE_CONF_DIR

TINY = dict(num_classes=3, train_per_class=3, val_per_class=2, semi_per_class=1, image_size=32, nyu_train=4,
            nyu_test=2, nyu_width=32, nyu_height=24)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return ensure_synthetic_downstream(tmp_path_factory.mktemp("cache"), **TINY)


def test_layout_on_disk_is_the_real_one(tiny_root):
    inet = tiny_root / "ImageNetS50"
    assert sorted(p.name for p in inet.iterdir()) == ["train", "train-semi", "train-semi-segmentation", "validation",
                                                      "validation-segmentation"]
    images = sorted((inet / "train").glob("*/*"))
    assert len(images) == 9 and all(p.suffix == ".JPEG" for p in images)
    for split, count in (("train", 4), ("test", 2)):
        for m in ("rgb", "depth", "semseg", "mask_valid"):
            names = sorted(p.name for p in (tiny_root / "nyuv2" / split / m / "data").iterdir())
            assert len(names) == count and all(len(n) == len("0000.png") for n in names)
    depth = Image.open(next((tiny_root / "nyuv2" / "train" / "depth" / "data").iterdir()))
    semseg = Image.open(next((tiny_root / "nyuv2" / "train" / "semseg" / "data").iterdir()))
    assert np.asarray(depth).dtype == np.uint16 and semseg.mode == "P" and semseg.size == (32, 24)


def test_imagenet_s_like_splits_are_balanced_and_masks_mark_the_labelled_class(tiny_root):
    train = ImageNetS50Classification(tiny_root, "train")  # the loader also finds the ImageNetS50/ subfolder
    assert train.num_classes == 3 and len(train) == 9
    assert np.bincount([train[i]["label"] for i in range(9)]).tolist() == [3, 3, 3]
    assert train[0]["image"].shape == (3, 32, 32)
    for split, count in (("validation", 6), ("train-semi", 3)):
        seg = ImageNetS50Segmentation(tiny_root, split)
        cls = ImageNetS50Classification(tiny_root, split)
        assert len(seg) == len(cls) == count
        for i in range(count):
            label, semseg = cls[i]["label"], seg[i]["semseg"]
            assert set(semseg.unique().tolist()) <= {0, label + 1, 255}
            assert (semseg == label + 1).any() and (semseg == 255).any()  # the class and its ignored outline


def test_nyuv2_like_frames_have_metric_depth_valid_masks_and_40_class_labels(tiny_root):
    ds = NYUv2(tiny_root / "nyuv2", "train", ["rgb", "depth", "semseg"])
    holes = 0
    for i in range(len(ds)):
        item = ds[i]
        assert item["rgb"].shape == (3, 24, 32) and item["depth"].shape == (1, 24, 32)
        valid_depth = item["depth"][item["valid"]]
        assert 0.3 < float(valid_depth.min()) and float(valid_depth.max()) < 10.0  # metres, in the room
        assert not bool(item["valid"][item["depth"] == 0].any())
        holes += int((item["depth"] == 0).sum())
        labels = set(item["semseg"].unique().tolist())
        assert labels <= set(range(40)) | {255} and 255 in labels and {0, 1} & labels  # wall/floor, seams ignored
    assert holes > 0


def test_written_once_then_reused_and_fingerprinted(tmp_path):
    first = ensure_synthetic_downstream(tmp_path, **TINY)
    stamp = (first / "settings.json").stat().st_mtime_ns
    assert ensure_synthetic_downstream(tmp_path, **TINY) == first
    assert (first / "settings.json").stat().st_mtime_ns == stamp
    other = ensure_synthetic_downstream(tmp_path, **dict(TINY, seed=1))
    assert other != first and sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, other.name])
    a = ImageNetS50Classification(first, "train")[0]["image"]
    b = ImageNetS50Classification(other, "train")[0]["image"]
    assert not torch.equal(a, b)
    with pytest.raises(ConfigError, match=r"unknown synthetic downstream setting\(s\) \['num_class'\]"):
        ensure_synthetic_downstream(tmp_path, num_class=3)
    with pytest.raises(ConfigError, match="num_classes=11 must be in 1..10"):
        ensure_synthetic_downstream(tmp_path, num_classes=11)


def compose_data(name: str):
    """conf/finetune/data/<name>.yaml composed by Hydra, merged onto the fine-tuning data schema (unknown keys fail)."""
    with initialize_config_dir(config_dir=str(FINETUNE_CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=f"data/{name}")
    return OmegaConf.merge(OmegaConf.structured(DownstreamDataConfig), cfg.data)


def test_downstream_data_configs_compose_with_roots_from_env(monkeypatch):
    monkeypatch.setenv("IMAGENET_S50_ROOT", "/data/ImageNetS50")
    monkeypatch.setenv("NYUV2_ROOT", "/data/nyuv2")
    synthetic = compose_data("synthetic_downstream")
    assert synthetic.name == "synthetic" and synthetic.root is None
    defaults = {f.name: f.default for f in fields(SyntheticDownstreamSettings)}
    assert OmegaConf.to_container(synthetic.synthetic) == defaults
    assert compose_data("imagenet_s50_downstream").root == "/data/ImageNetS50"
    nyu = compose_data("nyuv2")
    assert nyu.name == "nyuv2" and nyu.root == "/data/nyuv2" and nyu.num_workers == 8


@pytest.mark.parametrize("task, kinds, sizes", [
    ("cls", (ImageNetS50Classification, ImageNetS50Classification), (9, 6)),
    ("semseg", (NYUv2, NYUv2), (4, 2)),
    ("depth", (NYUv2, NYUv2), (4, 2)),
])
def test_downstream_datasets_serve_each_task_from_the_synthetic_config(tiny_root, task, kinds, sizes):
    cfg = OmegaConf.structured(DownstreamDataConfig(cache_dir=str(tiny_root.parent),
                                                    synthetic=SyntheticDownstreamSettings(**TINY)))
    train, evaluation = downstream_datasets(cfg, task)
    assert (type(train), type(evaluation)) == kinds and (len(train), len(evaluation)) == sizes
    if task != "cls":
        assert set(train[0]) == ({"rgb", "semseg"} if task == "semseg" else {"rgb", "depth", "valid"})


def test_downstream_datasets_for_real_data_pick_the_usual_splits(tiny_root):
    inet = DownstreamDataConfig(name="imagenet_s50", root=str(tiny_root / "ImageNetS50"))
    train, evaluation = downstream_datasets(inet, "semseg")
    assert (train.split, evaluation.split) == ("train-semi", "validation")
    nyu = DownstreamDataConfig(name="nyuv2", root=str(tiny_root / "nyuv2"), eval_split="train")
    assert [d.split for d in downstream_datasets(nyu, "depth")] == ["train", "train"]
    with pytest.raises(ConfigError, match=r"data.name=nyuv2 has no 'cls' labels \(it serves \['depth', 'semseg'\]\)"):
        downstream_datasets(nyu, "cls")
    with pytest.raises(ConfigError, match=r"data.name=nyuv2 has no 'normals' labels"):
        downstream_datasets(nyu, "normals")
    with pytest.raises(ConfigError, match=r"data.name='nowhere'.*\['imagenet_s50', 'nyuv2', 'synthetic'"):
        downstream_datasets(DownstreamDataConfig(name="nowhere"), "cls")
