"""ImageNet-S50 folders: classification labels in sorted-wnid order shared by every split, 'validation' / 'val',
mask decoding (id = R + 256 * G; 1000 -> ignore), and bad folders with errors that name the file."""

import numpy as np
import pytest
import torch
from PIL import Image

from attent_vision.data.downstream import (
    IMAGENET_S50_ENV,
    ImageNetS50Classification,
    ImageNetS50Segmentation,
    collate_skipping_bad,
    decode_imagenet_s_mask,
)
from attent_vision.errors import DataError

WNIDS = ["n01443537", "n01491361", "n02085620"]
H, W = 20, 28


def write_image(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((H, W, 3), value, np.uint8)).save(path, quality=100)


def write_mask(path, ids: np.ndarray):
    """Mask PNG in ImageNet-S's encoding: R = id % 256, G = id // 256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.stack([ids % 256, ids // 256, np.full_like(ids, 77)], axis=-1).astype(np.uint8)  # blue is ignored
    Image.fromarray(rgb).save(path)


def mask_for(label: int) -> np.ndarray:
    """Left third background, middle the class (mask id = label + 1), right third the ignore id 1000."""
    ids = np.zeros((H, W), np.int64)
    ids[:, W // 3 :] = label + 1
    ids[:, 2 * W // 3 :] = 1000
    return ids


@pytest.fixture
def imagenet_s(tmp_path):
    root = tmp_path / "ImageNetS50"
    for label, wnid in enumerate(WNIDS):
        for k in range(2):
            write_image(root / "train" / wnid / f"{wnid}_{k}.JPEG", 10 * label)
            write_image(root / "validation" / wnid / f"val_{wnid}_{k}.JPEG", 10 * label)
            write_mask(root / "validation-segmentation" / wnid / f"val_{wnid}_{k}.png", mask_for(label))
    return root


def test_classification_labels_follow_sorted_wnids(imagenet_s):
    train = ImageNetS50Classification(imagenet_s, "train")
    assert train.classes == WNIDS and train.num_classes == 3 and len(train) == 6
    item = train[5]
    assert item["label"] == 2 and isinstance(item["label"], int)
    assert item["image"].shape == (3, H, W) and item["image"].dtype == torch.uint8
    assert [train[i]["label"] for i in range(6)] == [0, 0, 1, 1, 2, 2]
    assert [round(train[i]["image"].float().mean().item() / 10) for i in range(6)] == [0, 0, 1, 1, 2, 2]


def test_validation_and_val_folder_names_are_interchangeable(imagenet_s):
    assert len(ImageNetS50Classification(imagenet_s, "validation")) == 6
    assert len(ImageNetS50Classification(imagenet_s, "val")) == 6
    (imagenet_s / "validation").rename(imagenet_s / "val")
    assert len(ImageNetS50Classification(imagenet_s, "validation")) == 6


def test_a_split_missing_a_class_keeps_the_train_class_index(imagenet_s):
    import shutil

    shutil.rmtree(imagenet_s / "validation" / WNIDS[0])
    val = ImageNetS50Classification(imagenet_s, "validation")
    assert val.classes == WNIDS and [val[i]["label"] for i in range(len(val))] == [1, 1, 2, 2]
    write_image(imagenet_s / "validation" / "n09999999" / "x.JPEG", 0)
    with pytest.raises(DataError, match=r"validation/n09999999 is a class that .*train does not have"):
        ImageNetS50Classification(imagenet_s, "validation")


def test_root_from_env_var_or_parent_folder(imagenet_s, monkeypatch):
    monkeypatch.setenv(IMAGENET_S50_ENV, str(imagenet_s))
    assert len(ImageNetS50Classification(None, "train")) == 6
    assert len(ImageNetS50Classification(imagenet_s.parent, "train")) == 6  # the folder holding ImageNetS50/
    monkeypatch.delenv(IMAGENET_S50_ENV)
    with pytest.raises(DataError, match="set data.root=/path/to/it or the environment variable IMAGENET_S50_ROOT"):
        ImageNetS50Classification(None, "train")


def test_wrong_root_or_split_says_what_to_point_at(imagenet_s, tmp_path):
    with pytest.raises(DataError, match=r"ImageNet-S50 folder .*missing does not exist; set data.root"):
        ImageNetS50Classification(tmp_path / "missing", "train")
    with pytest.raises(DataError, match=r"split folder .*/test does not exist \(found: \['train', 'validation'"):
        ImageNetS50Classification(imagenet_s, "test")


def test_empty_class_folder_is_an_error_or_skipped(imagenet_s):
    for f in (imagenet_s / "train" / WNIDS[1]).iterdir():
        f.unlink()
    with pytest.raises(DataError, match=rf"class folder .*train/{WNIDS[1]} holds no images.*skip_bad_samples"):
        ImageNetS50Classification(imagenet_s, "train")
    train = ImageNetS50Classification(imagenet_s, "train", skip_bad_samples=True)
    assert len(train) == 4 and train.classes == WNIDS and WNIDS[1] in train.skipped[0]
    assert [train[i]["label"] for i in range(4)] == [0, 0, 2, 2]


def test_truncated_image_names_the_file_or_is_skipped(imagenet_s):
    bad = imagenet_s / "train" / WNIDS[0] / f"{WNIDS[0]}_1.JPEG"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(DataError, match=rf"cannot decode .*{bad.name}.*skip_bad_samples"):
        ImageNetS50Classification(imagenet_s, "train")[1]
    train = ImageNetS50Classification(imagenet_s, "train", skip_bad_samples=True)
    batch = collate_skipping_bad([train[i] for i in range(3)])
    assert batch["label"].tolist() == [0, 1] and batch["bad_index"] == [1] and bad.name in batch["bad"][0]


def test_mask_decoding_is_r_plus_256_g():
    ids = torch.tensor([[0, 1, 50, 255], [256, 300, 1000, 1255]])
    mask = torch.stack([ids % 256, ids // 256, torch.full_like(ids, 9)]).to(torch.uint8)
    assert torch.equal(decode_imagenet_s_mask(mask), ids)


def test_segmentation_decodes_classes_background_and_ignore(imagenet_s):
    seg = ImageNetS50Segmentation(imagenet_s, "validation")
    assert len(seg) == 6 and seg.num_classes == 4  # background + 3 classes
    for i in range(6):
        item = seg[i]
        label = i // 2
        assert item["image"].shape == (3, H, W) and item["image"].dtype == torch.uint8
        assert item["semseg"].shape == (H, W) and item["semseg"].dtype == torch.int64
        expected = torch.from_numpy(mask_for(label)).masked_fill(torch.from_numpy(mask_for(label) == 1000), 255)
        assert torch.equal(item["semseg"], expected)
        assert set(item["semseg"].unique().tolist()) == {0, label + 1, 255}


def test_mask_id_outside_the_known_range_is_an_error_naming_the_file(imagenet_s):
    path = imagenet_s / "validation-segmentation" / WNIDS[0] / f"val_{WNIDS[0]}_0.png"
    ids = mask_for(0)
    ids[0, 0] = 4  # 3 classes: 1..3 are classes, 4 is unknown
    ids[1, 1] = 300
    write_mask(path, ids)
    seg = ImageNetS50Segmentation(imagenet_s, "validation")
    with pytest.raises(DataError, match=rf"{path.name} holds mask ids \[4, 300\] outside the known range"):
        seg[0]
    skipping = ImageNetS50Segmentation(imagenet_s, "validation", skip_bad_samples=True)
    assert "bad" in skipping[0] and "semseg" in skipping[1]


def test_image_without_mask_or_mask_of_another_size(imagenet_s):
    mask = imagenet_s / "validation-segmentation" / WNIDS[2] / f"val_{WNIDS[2]}_1.png"
    mask.unlink()
    with pytest.raises(DataError, match=rf"{mask.name} is missing: .* has no mask"):
        ImageNetS50Segmentation(imagenet_s, "validation")
    seg = ImageNetS50Segmentation(imagenet_s, "validation", skip_bad_samples=True)
    assert len(seg) == 5 and mask.name in seg.skipped[0]
    write_mask(mask, np.zeros((H + 2, W), np.int64))
    with pytest.raises(DataError, match=r"is \(22, 28\) but its image .* is \(20, 28\)"):
        ImageNetS50Segmentation(imagenet_s, "validation")[5]
    with pytest.raises(DataError, match=r"mask folder .*train-segmentation does not exist"):
        ImageNetS50Segmentation(imagenet_s, "train")


def test_fine_tuning_with_skipping_names_every_skipped_file_and_mixes_odd_batches(imagenet_s, tmp_path, caplog):
    """Skip mode through a whole fine-tune with the reference mixup: a bad training image leaves an odd batch
    (timm's Mixup pairs samples: that batch trains unmixed instead of crashing) and both the training and the
    evaluation warnings name the skipped files."""
    import logging

    from attent_vision.config import validate_finetune_config
    from attent_vision.finetuning.suite import compose_finetune
    from attent_vision.finetuning.trainer import finetune

    bad_train = imagenet_s / "train" / WNIDS[0] / f"{WNIDS[0]}_1.JPEG"
    bad_val = imagenet_s / "validation" / WNIDS[2] / f"val_{WNIDS[2]}_0.JPEG"
    for bad in (bad_train, bad_val):
        bad.write_bytes(bad.read_bytes()[:100])
    cfg = compose_finetune("imagenet_s50_cls", None, [
        "data=imagenet_s50_downstream", f"data.root={imagenet_s}", "data.skip_bad_samples=true", "data.num_workers=0",
        "task.num_classes=null", "task.augment.auto_augment=null", "model.scratch_name=multivit_pico",
        "model.scratch_patch_size=8", "model.image_size=32", "trainer.epochs=1", "trainer.batch_size=6",
        "trainer.eval_batch_size=6", "trainer.progress_bar=false"])
    assert cfg.task.mixup.mixup_alpha > 0 and cfg.task.mixup.cutmix_alpha > 0  # the reference recipe's mixing
    validate_finetune_config(cfg)
    with caplog.at_level(logging.WARNING):
        results = finetune(cfg, tmp_path / "run")
    assert results["status"] == "completed" and results["optimizer_steps"] == 1
    assert results["bad_samples"] == 1 and str(bad_train) in results["bad_examples"][0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("epoch 1: skipped 1 samples" in w and str(bad_train) in w for w in warnings), warnings
    assert any("evaluation: skipped 1 samples" in w and str(bad_val) in w for w in warnings), warnings
