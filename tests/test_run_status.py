"""A run's status covers every stage it ran and every write it made: a SIGTERM while the downstream tasks fine-tune
makes the pretraining run ``interrupted`` (exit 143, requeue-able; the rerun resumes that task and keeps the
completed ones) and the report reads only completed tasks; a task that diverges fails the run; a full disk at the
final writes fails the run naming the file (never "running", never a truncated figure); and a multirun stops at the
signal instead of starting its next job."""

import errno
import json
import math
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from attent_vision.engine.results import read_results
from attent_vision.report import downstream_metric

from conftest import REPO, run_in_process

# The embedded fine-tuning data at its smallest (generated once per session): 3 classes of 4 images at 32 px,
# 16 NYUv2-like frames of 32 x 24. A pico-sized head at 32 px and batch 8: a few seconds per task.
TINY_DATA = ["data.synthetic.num_classes=3", "data.synthetic.train_per_class=4", "data.synthetic.val_per_class=2",
             "data.synthetic.semi_per_class=1", "data.synthetic.image_size=32", "data.synthetic.nyu_train=16",
             "data.synthetic.nyu_test=4", "data.synthetic.nyu_width=32", "data.synthetic.nyu_height=24"]
TINY_TASK = ["model.image_size=32", "task.head.feature_dim=8", "trainer.batch_size=8", "trainer.eval_batch_size=8",
             "trainer.progress_bar=false", *TINY_DATA]


def downstream(tasks: list[str], overrides: list[str]) -> list[str]:
    return [f"downstream.tasks=[{','.join(tasks)}]",
            "downstream.overrides=[" + ",".join(f"'{o}'" for o in TINY_TASK + overrides) + "]"]


def test_sigterm_during_a_downstream_fine_tune_interrupts_the_run_and_the_rerun_resumes_it(tmp_path):
    tasks = ["imagenet_s50_cls", "nyuv2_depth", "nyuv2_seg"]
    # nyuv2_depth: 2 steps per epoch, 3 epochs, a log line per step: the signal comes after its first step.
    args = ["train.py", "debug=smoke", "selection=none", "trainer.epochs=1", "trainer.progress_bar=false",
            f"hydra.run.dir={tmp_path}", *downstream(tasks, ["trainer.epochs=3", "trainer.log_every_steps=1"])]
    proc = subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    seen, depth_started = [], False
    for line in proc.stderr:  # blocks until the run logs: no polling
        seen.append(line)
        depth_started = depth_started or "downstream suite: nyuv2_depth from" in line
        if depth_started and " step 1/" in line:  # the depth fine-tune's first optimizer step is done
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    err = "".join(seen) + err
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    results = read_results(tmp_path / "results.json")
    assert results["status"] == "interrupted" and results["exit_code"] == 143, results.get("stages")
    assert results["stages"] == {"pretraining": "completed", "downstream": "interrupted"}
    assert results["downstream"]["imagenet_s50_cls"]["status"] == "completed"
    assert results["downstream"]["nyuv2_depth"]["status"] == "interrupted"
    task = read_results(tmp_path / "downstream" / "nyuv2_depth" / "results.json")
    assert task["status"] == "interrupted" and 0 < task["optimizer_steps"] < task["planned_optimizer_steps"]
    assert not (tmp_path / "downstream" / "nyuv2_seg").exists()  # the signal stopped the suite: not started
    assert "nyuv2_seg" not in results["downstream"]
    # The report takes no number from a task that did not complete (the run itself is left out as interrupted).
    assert math.isnan(downstream_metric(results, "nyuv2_depth"))
    assert not math.isnan(downstream_metric(results, "imagenet_s50_cls"))
    cls_before = (tmp_path / "downstream" / "imagenet_s50_cls" / "results.json").read_bytes()

    out = run_in_process(args)  # what the scheduler's requeue does: the same command
    assert out.returncode == 0, out.stderr[-3000:]
    assert "imagenet_s50_cls completed earlier" in out.stderr and "; kept" in out.stderr
    assert f"resumed from {tmp_path / 'downstream' / 'nyuv2_depth' / 'checkpoints'}" in out.stderr
    final = read_results(tmp_path / "results.json")
    assert final["status"] == "completed" and final["exit_code"] == 0
    assert final["stages"] == {"pretraining": "completed", "downstream": "completed"}
    assert {t: r["status"] for t, r in final["downstream"].items()} == dict.fromkeys(tasks, "completed")
    depth = read_results(tmp_path / "downstream" / "nyuv2_depth" / "results.json")
    assert depth["optimizer_steps"] == depth["planned_optimizer_steps"] == 6
    assert (tmp_path / "downstream" / "imagenet_s50_cls" / "results.json").read_bytes() == cls_before  # kept
    assert downstream_metric(final, "nyuv2_depth") == depth["final"]["val_delta1"]


DIVERGING = ["trainer.epochs=2", "optim.warmup_epochs=0", "optim.lr=1e12"]  # non-finite from the first steps


def test_a_diverged_downstream_task_fails_the_run_as_its_own_run_would_exit(tmp_path):
    out = run_in_process(["train.py", "debug=smoke", "selection=none", "trainer.epochs=1", "trainer.progress_bar=false",
                          f"hydra.run.dir={tmp_path}", *downstream(["nyuv2_depth"], DIVERGING)])
    assert out.returncode == 3, out.stderr[-3000:]  # a diverged fine-tuning run exits 3
    results = read_results(tmp_path / "results.json")
    assert results["status"] == "failed" and results["exit_code"] == 3
    assert results["stages"] == {"pretraining": "completed", "downstream": "failed"}
    assert results["error"].startswith("downstream nyuv2_depth diverged (non-finite ")
    assert f"error: {results['error']}" in out.stderr and "Traceback" not in out.stderr
    assert results["downstream"]["nyuv2_depth"]["status"] == "diverged"
    assert (tmp_path / "pretrained.pth").is_file()  # pretraining itself completed


def test_the_report_reads_only_completed_downstream_tasks():
    """results.json written before the run's status covered its tasks: ``completed`` beside an interrupted task."""
    old = {"status": "completed", "downstream": {
        "nyuv2_depth": {"status": "interrupted", "final": {"val_delta1": 0.2}},
        "imagenet_s50_cls": {"status": "completed", "final": {"val_top1": 0.5}},
        "nyuv2_seg": {"status": "failed", "error": "no data"}}}
    assert math.isnan(downstream_metric(old, "nyuv2_depth")) and math.isnan(downstream_metric(old, "nyuv2_seg"))
    assert downstream_metric(old, "imagenet_s50_cls") == 0.5


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_at_the_final_writes_fails_the_run_naming_the_file(tmp_path, monkeypatch):
    """The disk fills after the last checkpoint, at each of the final writes in turn. Each time: exit 2, one line
    naming the file, results.json ``failed`` with that line (never ``running``), no truncated or temporary file.
    Each rerun resumes from the final checkpoint and meets the next write; once there is space it completes."""
    args = ["train.py", "debug=smoke", "selection=none", "trainer.epochs=1", "trainer.progress_bar=false",
            f"hydra.run.dir={tmp_path}"]
    figure = tmp_path / "reconstructions" / "final.png"

    def figure_half_written(self, fp, *a, **k):  # PIL writes the figure, then the disk is full
        f = open(fp, "wb") if isinstance(fp, (str, os.PathLike)) else fp  # (it takes a file name or a file)
        f.write(b"\x89PNG\r\n")
        f.flush()
        no_space()

    def selections_meet_a_full_disk(f, **arrays):
        f.write(b"PK")
        no_space()

    real_save = torch.save

    def weights_meet_a_full_disk(obj, f, *a, **k):  # checkpoints are written; pretrained.pth is not
        if set(obj) == {"model", "config"}:
            f.write(b"partial")
            no_space()
        return real_save(obj, f, *a, **k)

    real_dump = json.dump

    def completed_results_meet_a_full_disk(data, f, **k):  # the epochs' and the failure's results.json are written
        if data.get("status") == "completed":
            no_space()
        return real_dump(data, f, **k)

    for target, patch, path in [(np, ("savez_compressed", selections_meet_a_full_disk), tmp_path / "selections.npz"),
                                (Image.Image, ("save", figure_half_written), figure),
                                (torch, ("save", weights_meet_a_full_disk), tmp_path / "pretrained.pth"),
                                (json, ("dump", completed_results_meet_a_full_disk), tmp_path / "results.json")]:
        with monkeypatch.context() as m:
            m.setattr(target, *patch)
            out = run_in_process(args)
        assert out.returncode == 2, out.stderr[-3000:]
        assert "Traceback" not in out.stderr
        line = f"error: cannot write {path}: no space left on the device ("
        assert line in out.stderr, out.stderr[-3000:]
        results = read_results(tmp_path / "results.json")
        assert results["status"] == "failed" and results["exit_code"] == 2
        assert results["error"].startswith(f"cannot write {path}: no space left on the device")
        assert not list(tmp_path.rglob("*.tmp"))  # every atomic writer removed its temporary file
        if path == figure:
            assert not figure.exists() and not (tmp_path / "pretrained.pth").exists()  # nothing half-written
        if path.name == "pretrained.pth":
            assert not path.exists() and figure.stat().st_size > 0
    out = run_in_process(args)  # space again: the rerun finishes from the final checkpoint
    assert out.returncode == 0, out.stderr[-3000:]
    assert read_results(tmp_path / "results.json")["status"] == "completed"
    assert figure.stat().st_size > 0 and (tmp_path / "pretrained.pth").is_file()


@pytest.mark.slow
def test_a_sweep_stops_at_a_sigterm_instead_of_starting_its_next_job(tmp_path):
    args = ["train.py", "-m", "debug=smoke", "selection=none", "trainer.epochs=10", "checkpoint.every_epochs=0",
            "trainer.progress_bar=false", "trainer.seed=0,1", f"hydra.sweep.dir={tmp_path}"]
    proc = subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "epoch 1/10 done" in line:  # job 0 is training
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    err = "".join(seen) + err
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    (job,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert job.name.startswith("0_")  # job 1 never started
    assert read_results(job / "results.json")["status"] == "interrupted"
    summary = err.strip().splitlines()[-1]
    assert "1 of 2 jobs did not complete: " in summary and f"{job.name} (interrupted: stopped by signal 15" in summary
    assert "; job 1 not started (the sweep stopped at the signal" in summary and "Traceback" not in err
