"""Fine-tuning on the shared loop core: reproducible to the bit (augmentation and mixup seeded per sample and per
step), resumable mid-epoch to the bit, preemptible (SIGTERM saves and exits 143, a rerun finishes), and the same
with two gloo ranks as with one process."""

import json
import signal
import subprocess
import sys

import pytest
import torch

from attent_vision.finetuning.suite import compose_finetune
from attent_vision.finetuning.trainer import finetune

from conftest import REPO, run_cli, run_in_process

# Pico at 32 px, batch 32: 10 steps per epoch over the 320 embedded training images. Mixup and random crops on, so
# that every random stream of fine-tuning is exercised.
TINY = ["model.scratch_name=multivit_pico", "model.scratch_patch_size=8", "model.image_size=32",
        "trainer.batch_size=32", "trainer.epochs=2", "trainer.progress_bar=false", "trainer.log_every_steps=5"]
MIXUP = ["task.mixup.mixup_alpha=0.8", "task.mixup.cutmix_alpha=1.0"]


def run(run_dir, overrides):
    return finetune(compose_finetune("imagenet_s50_cls", None, TINY + overrides), run_dir)


def weights(run_dir):
    return torch.load(run_dir / "finetuned.pth", weights_only=True)["model"]


def same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_numbers_and_a_mid_epoch_resume_is_bit_identical(tmp_path):
    reference = run(tmp_path / "reference", MIXUP)
    again = run(tmp_path / "again", MIXUP)
    assert again["history"][-1]["train_loss"] == reference["history"][-1]["train_loss"]
    assert same_weights(weights(tmp_path / "reference"), weights(tmp_path / "again"))

    stopped = run(tmp_path / "resumed", MIXUP + ["trainer.stop_after_steps=13"])  # 3 steps into epoch 2
    assert stopped["status"] == "interrupted" and stopped["optimizer_steps"] == 13
    resumed = run(tmp_path / "resumed", MIXUP)
    assert resumed["status"] == "completed" and resumed["optimizer_steps"] == reference["optimizer_steps"] == 20
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in reference["history"]]
    assert resumed["final"] == reference["final"] and resumed["baseline"] == reference["baseline"]
    assert same_weights(weights(tmp_path / "reference"), weights(tmp_path / "resumed"))

    other_seed = run(tmp_path / "seed1", MIXUP + ["trainer.seed=1"])
    assert other_seed["history"][-1]["train_loss"] != reference["history"][-1]["train_loss"]


def test_sigterm_saves_a_checkpoint_and_a_rerun_finishes(tmp_path):
    args = ["finetune.py", *TINY, "trainer.epochs=6", "checkpoint.every_epochs=0", f"hydra.run.dir={tmp_path}"]
    proc = subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    lines = []
    for line in proc.stderr:  # blocks until the run logs; no polling
        lines.append(line)
        if "epoch 1/6 done" in line:
            proc.send_signal(signal.SIGTERM)
            break
    _, rest = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, "".join(lines)[-2000:] + rest[-2000:]
    stopped = json.loads((tmp_path / "results.json").read_text())
    assert stopped["status"] == "interrupted" and stopped["exit_code"] == 143
    steps = stopped["optimizer_steps"]
    assert 10 <= steps < 60 and (tmp_path / "checkpoints" / f"step_{steps:08d}.pt").is_file()
    assert not list(tmp_path.rglob("*.tmp"))
    out = run_in_process(args)  # the rerun needs no process of its own
    assert out.returncode == 0, out.stderr[-2000:]
    final = json.loads((tmp_path / "results.json").read_text())
    assert final["status"] == "completed" and final["optimizer_steps"] == final["planned_optimizer_steps"] == 60
    assert "resumed from" in out.stderr


def test_two_gloo_ranks_match_one_process(tmp_path):
    """Each rank takes every second sample of each global batch; losses are batch means, averaged by DDP; metrics
    are summed over ranks. So the trajectory and the metrics equal one process's, up to reduction order."""
    run(tmp_path / "single", ["trainer.eval_batch_size=16"])  # the reference, in this process
    # The ranks through the entry point, as users launch them (rank 0's run folder shared by both).
    ddp = run_cli(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "finetune.py", *TINY,
                   "trainer.eval_batch_size=16", f"hydra.run.dir={tmp_path / 'ddp'}"], env={"OMP_NUM_THREADS": "1"})
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a, b = (json.loads((tmp_path / name / "results.json").read_text()) for name in ("single", "ddp"))
    assert b["setting"]["world_size"] == 2 and a["optimizer_steps"] == b["optimizer_steps"] == 20
    assert [h["train_loss"] for h in b["history"]] == pytest.approx([h["train_loss"] for h in a["history"]], rel=1e-4)
    assert b["final"]["val_top1"] == pytest.approx(a["final"]["val_top1"], abs=1 / 80 + 1e-9)  # at most 1 of 80
    assert b["baseline"] == a["baseline"]
