"""finetune.py as users run it: the three-task multirun on the embedded data, and bad input that must fail in one
line before any work (no traceback, no checkpoint written)."""

import json

import pytest
import torch

from attent_vision.config import validate_config
from attent_vision.errors import CheckpointError, ConfigError
from attent_vision.finetuning.data import build_finetune_datasets
from attent_vision.finetuning.suite import compose_finetune
from attent_vision.finetuning.task_kinds import TASK_KINDS
from attent_vision.finetuning.trainer import finetune

from conftest import run_cli, run_in_process

# Pico model at 32 px, one epoch, no checkpoints between epochs: the plumbing, not the learning (test_finetune_train).
TINY = ["model.scratch_name=multivit_pico", "model.scratch_patch_size=8", "model.image_size=32", "trainer.epochs=1",
        "trainer.progress_bar=false", "task.head.feature_dim=8", "task.head.embed_dim=32"]


def test_one_command_fine_tunes_all_three_tasks(tmp_path):
    proc = run_in_process(["finetune.py", "finetune_sweep=all_tasks", f"hydra.sweep.dir={tmp_path}", *TINY])
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = {}
    for path in sorted(tmp_path.glob("*/results.json")):
        r = json.loads(path.read_text())
        found[r["task"]] = r
        assert r["status"] == "completed" and r["epochs_completed"] == 1
        assert r["best"]["epoch"] == 1 and r["main_metric"] in r["best"] and r["main_metric"] in r["final"]
        assert r["main_metric"] in r["baseline"]
        assert (path.parent / "finetuned.pth").is_file() and (path.parent / "config.yaml").is_file()
    assert sorted(found) == ["imagenet_s50_cls", "nyuv2_depth", "nyuv2_seg"]
    assert set(found["nyuv2_depth"]["best"]) >= {"val_delta1", "val_delta2", "val_delta3", "val_abs_rel", "val_rmse"}
    assert set(found["nyuv2_seg"]["best"]) >= {"val_miou", "val_pixel_acc"}
    assert set(found["imagenet_s50_cls"]["best"]) >= {"val_top1", "val_top5"}
    for r in found.values():  # each registered kind reports what it declares (finetuning/task_kinds/)
        kind = TASK_KINDS.get(r["kind"])
        assert set(r["best"]) == {f"val_{m}" for m in kind.metrics} | {"epoch"}
        assert r["main_metric"] == f"val_{kind.main_metric}" and r["main_metric"] in r["baseline"]
    assert "training from scratch" in proc.stderr  # no init_from: the warning


def _single_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if "error:" in line.lower()]
    assert len(errors) == 1, stderr[-2000:]
    return errors[0]


def test_missing_checkpoint_fails_in_one_line_without_writing_anything(tmp_path):
    run = tmp_path / "run"
    proc = run_in_process(["finetune.py", f"init_from={tmp_path / 'nope.pth'}", f"hydra.run.dir={run}", *TINY])
    assert proc.returncode == 2
    line = _single_error_line(proc.stderr)
    assert "nope.pth" in line and "no such file" in line
    assert not (run / "checkpoints").exists() and not (run / "finetuned.pth").exists()


def test_unknown_task_is_refused_by_hydra_listing_the_tasks(tmp_path):
    proc = run_cli(["finetune.py", "task=nyuv2_normals", f"hydra.run.dir={tmp_path}"])
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "nyuv2_normals" in proc.stderr and "nyuv2_depth" in proc.stderr  # Hydra lists the available options


def test_dataset_without_the_task_labels_fails_before_training(tmp_path):
    folder = tmp_path / "ImageNetS50"
    (folder / "train" / "n01").mkdir(parents=True)
    cfg = compose_finetune("nyuv2_depth", None, ["data=imagenet_s50_downstream", f"data.root={folder}", *TINY])
    validate_config(cfg, "finetune")
    with pytest.raises(ConfigError, match="has no 'depth' labels"):
        finetune(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "finetuned.pth").exists()


def test_depth_input_needs_a_dataset_with_depth():
    cfg = compose_finetune("imagenet_s50_cls", None, ["task.in_domains=[rgb,depth]"])
    with pytest.raises(ConfigError, match="task.in_domains=.*rgb only"):
        validate_config(cfg, "finetune")
    # NYUv2 has depth: rgb-depth segmentation gets a robust-standardised depth input next to rgb.
    cfg = compose_finetune("nyuv2_seg", None, ["task.in_domains=[rgb,depth]", *TINY])
    validate_config(cfg, "finetune")
    train, _, num_classes = build_finetune_datasets(cfg)
    item = train[0]
    assert item["rgb"].shape == (3, 32, 32) and item["depth"].shape == (1, 32, 32) and item["target"].shape == (32, 32)
    assert num_classes == 40 and abs(float(item["depth"].mean())) < 1.5


@pytest.mark.parametrize("override, key", [
    ("optim.layer_decay=1.5", "optim.layer_decay"),
    ("task.loss=berhu", "task.loss"),
    ("model.name=multimae_pico", "model.name"),
    ("task.mixup.mixup_alpha=0.8", "task.mixup.mixup_alpha"),  # nyuv2_seg below: mixup is classification-only
    ("trainer.epochs=0", "trainer.epochs"),  # evaluation only needs a checkpoint
    ("data.root=/data/x", "data.cache_dir"),  # the synthetic data has no root: the error says where it is cached
])
def test_bad_values_name_the_key(override, key):
    cfg = compose_finetune("nyuv2_seg", None, [override])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_config(cfg, "finetune")


def test_transforms_keep_labels_integer_and_mark_padding_ignored():
    cfg = compose_finetune("nyuv2_seg", None, TINY + ["task.augment.scale_range=[0.3,0.3]"])
    train, evaluation, _ = build_finetune_datasets(cfg)
    torch.manual_seed(0)
    item = train[0]
    labels = item["target"]
    assert labels.dtype == torch.int64
    # Scaled to 30% of the 32 px target, the frame fills only a corner: the rest is padding, ignored.
    assert (labels == 255).float().mean() > 0.5
    assert set(labels.unique().tolist()) <= set(range(40)) | {255}
    depth_cfg = compose_finetune("nyuv2_depth", None, TINY)
    _, depth_eval, _ = build_finetune_datasets(depth_cfg)
    d = depth_eval[0]
    assert d["target"].shape == d["valid"].shape == (1, 32, 32) and d["valid"].dtype == torch.bool
    assert bool((d["target"][d["valid"]] > 0).all())


def test_suite_composes_inside_a_running_hydra_app_and_restores_it():
    # The end-of-pretraining hook runs inside train.py's @hydra.main: composing the fine-tuning configs must not
    # break (or replace) the caller's Hydra state.
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from conftest import TRAIN_CONF_DIR

    with initialize_config_dir(config_dir=str(TRAIN_CONF_DIR), version_base="1.3"):
        outer = GlobalHydra.instance().hydra
        cfg = compose_finetune("nyuv2_depth", "/some/run", ["trainer.epochs=3"])
        assert GlobalHydra.instance().hydra is outer
    assert cfg.task.name == "nyuv2_depth" and cfg.init_from == "/some/run" and cfg.trainer.epochs == 3


def test_evaluation_only_reproduces_the_fine_tuned_metrics_and_needs_a_head(tmp_path):
    first = finetune(compose_finetune("nyuv2_depth", None, TINY), tmp_path / "ft")
    again = finetune(compose_finetune("nyuv2_depth", tmp_path / "ft", TINY[:-4] + ["trainer.epochs=0",
                                      "trainer.progress_bar=false", "task.head.feature_dim=8"]), tmp_path / "eval")
    assert again["init"]["init_from"] == str(tmp_path / "ft" / "finetuned.pth") and not again["init"]["missing"]
    assert again["best"]["val_delta1"] == pytest.approx(first["final"]["val_delta1"], abs=1e-6)
    assert again["optimizer_steps"] == 0
    pretrained_only = tmp_path / "enc.pth"
    torch.save({"model": {k: v for k, v in torch.load(tmp_path / "ft" / "finetuned.pth")["model"].items()
                          if not k.startswith("output_adapters.")}}, pretrained_only)
    with pytest.raises(CheckpointError, match="holds no trained 'depth' head"):
        finetune(compose_finetune("nyuv2_depth", pretrained_only, ["model.image_size=32", "trainer.epochs=0"]),
                 tmp_path / "eval2")
