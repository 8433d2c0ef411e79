"""Fine-tuning learns: on the embedded data each task beats its trivial baseline clearly, starting from a real
pretraining checkpoint whose whole encoder is loaded.

The checkpoint comes from a real pretraining run (the Python API, pico model, full data, no subset selection) on
the embedded pretraining data, rendered by the same procedural renderer as the downstream sets. Whether it beats
training from scratch is *not* asserted: at this scale (2 blocks of width 32, 32 px, seconds of CPU
pretraining) the two starts end within seed noise of each other for every task. The pretraining is 8 epochs on 256
scenes: the fine-tunes reached the same margins as after 20 epochs on 512 (measured: depth delta_1 0.655 vs 0.648,
top-1 0.225 vs 0.200, mIoU 0.139 vs 0.141, baselines 0.473 / 0.1 / 0.047). Measured over seeds 0-4, depth
after 3 epochs: delta_1 pretrained 0.49-0.55 vs scratch 0.47-0.59 (pretrained ahead on 1 seed of 5); after 8
epochs 0.640-0.664 vs 0.637-0.653 (ahead on 4 of 5, by 0.008 on average). An earlier version of this test asserted
a 0.03 lead from seed 0 alone; it did not hold on other seeds.
"""

import json

import pytest
import torch

from attent_vision.finetuning.suite import run_finetune_suite

from conftest import compose_train

PICO = ["model.scratch_name=multivit_pico", "model.scratch_patch_size=8", "model.image_size=32",
        "trainer.progress_bar=false", "checkpoint.every_epochs=0"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Pico-sized work gains nothing from intra-op threads, and on a shared 2-core machine two spinning OpenMP
    threads per process slow it down ten-fold; one thread keeps this module's run time predictable."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory, one_thread):
    from attent_vision.pretraining.trainer import pretrain

    run = tmp_path_factory.mktemp("pretrain_pico")
    cfg = compose_train(["debug=smoke", "selection=none", "trainer.progress_bar=false", "trainer.epochs=8",
                         "trainer.val_every_epochs=0", "data.synthetic.num_train=256", "data.synthetic.max_noise=0.05"])
    result = pretrain(cfg, run)
    assert result["status"] == "completed" and (run / "pretrained.pth").is_file()
    return run


def test_depth_fine_tunes_the_pretrained_encoder_and_beats_the_baseline(pretrained_run, tmp_path):
    pre = run_finetune_suite(pretrained_run, ["nyuv2_depth"], PICO + ["trainer.epochs=8"], tmp_path)["nyuv2_depth"]
    assert pre["init"]["init_from"] == str(pretrained_run / "pretrained.pth")
    assert not [k for k in pre["init"]["missing"] if not k.startswith("output_adapters.")]  # the whole encoder
    p, base = pre["best"], pre["baseline"]
    assert p["val_delta1"] >= base["val_delta1"] + 0.1 and p["val_abs_rel"] < base["val_abs_rel"] - 0.05, (p, base)
    summary = json.loads((tmp_path / "downstream.json").read_text())
    assert summary["tasks"]["nyuv2_depth"]["best"]["val_delta1"] == p["val_delta1"]


def test_classification_and_segmentation_beat_their_baselines(pretrained_run, tmp_path):
    cls = run_finetune_suite(pretrained_run, ["imagenet_s50_cls"], PICO + ["trainer.epochs=30"], tmp_path)
    r = cls["imagenet_s50_cls"]
    assert r["status"] == "completed" and r["setting"]["num_classes"] == 10
    assert r["baseline"]["val_top1"] == pytest.approx(0.1)  # balanced classes: the majority guess is right 1 in 10
    assert r["best"]["val_top1"] >= r["baseline"]["val_top1"] + 0.08, r["best"]
    seg = run_finetune_suite(pretrained_run, ["nyuv2_seg"], PICO + ["trainer.epochs=6"], tmp_path)["nyuv2_seg"]
    assert seg["best"]["val_miou"] >= 2 * seg["baseline"]["val_miou"], (seg["best"], seg["baseline"])
    assert seg["best"]["val_pixel_acc"] >= seg["baseline"]["val_pixel_acc"] + 0.2
    # Best and final are both reported; the best is the best of the history.
    assert seg["epochs_completed"] == 6 and seg["history"][-1]["epoch"] == 6
    assert seg["best"]["val_miou"] == pytest.approx(max(h["val_miou"] for h in seg["history"]), abs=1e-6)
