"""Preemption: SIGTERM leaves a resumable checkpoint; a launcher's requeue signal (SIGUSR2, submitit) runs only
after our checkpoint is on disk; a submitit multirun executes its jobs end to end."""

import json
import os
import signal
import subprocess
import sys

import pytest

from attent_vision.engine.checkpoint import CheckpointManager
from attent_vision.pretraining.trainer import Pretrainer, pretrain

from conftest import REPO, compose_train, run_cli, run_in_process


def test_sigterm_during_training_leaves_a_resumable_checkpoint(tmp_path):
    # 10 epochs: the signal comes after the first (the test reads that line) with ~3 s of training still to go.
    args = ["train.py", "debug=smoke", "trainer.epochs=10", "checkpoint.every_epochs=0", f"hydra.run.dir={tmp_path}"]
    proc = subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    for line in proc.stderr:  # blocks until the run logs: no polling
        if "epoch 1/10 done" in line:
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "interrupted" and results["exit_code"] == 143
    saved = CheckpointManager(tmp_path / "checkpoints").latest()
    assert saved is not None and int(saved.stem.split("_")[1]) == results["optimizer_steps"] > 0
    out = run_in_process(args)  # the rerun needs no process of its own
    assert out.returncode == 0, out.stderr[-2000:]
    final = json.loads((tmp_path / "results.json").read_text())
    assert final["status"] == "completed" and final["optimizer_steps"] == final["planned_optimizer_steps"]


def test_launcher_requeue_runs_after_our_checkpoint(tmp_path):
    """Like submitit: a Python handler for SIGUSR2 that requeues and exits. Ours must save first, then call it."""
    calls = []

    def launcher_requeue(signum, frame):
        latest = CheckpointManager(tmp_path / "run" / "checkpoints").latest()
        calls.append(int(latest.stem.split("_")[1]))
        raise SystemExit(0)

    previous = signal.signal(signal.SIGUSR2, launcher_requeue)
    try:
        trainer = Pretrainer(compose_train(["debug=smoke", "checkpoint.every_epochs=0"]), tmp_path / "run")
        observe = trainer.teacher.observe

        def observe_and_signal(indices, per_sample, weights, step):
            observe(indices, per_sample, weights, step)
            if step == 8:  # during the 9th optimizer step
                os.kill(os.getpid(), signal.SIGUSR2)

        trainer.teacher.observe = observe_and_signal
        with pytest.raises(SystemExit):
            trainer.run()
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert calls == [9]  # the launcher saw a checkpoint of the step that was running when the signal came
    resumed = pretrain(compose_train(["debug=smoke", "checkpoint.every_epochs=0"]), tmp_path / "run")
    reference = pretrain(compose_train(["debug=smoke", "checkpoint.every_epochs=0"]), tmp_path / "reference")
    assert resumed["status"] == "completed" and resumed["final"]["val_loss"] == reference["final"]["val_loss"]


@pytest.mark.slow
def test_submitit_local_multirun_runs_two_jobs(tmp_path):
    out = run_cli(["train.py", "-m", "debug=smoke", "hydra/launcher=local_2cpu", "selection=none,random",
                   f"hydra.sweep.dir={tmp_path}"])
    assert out.returncode == 0, out.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/results.json"))]
    assert [r["setting"]["selection"] for r in results] == ["none", "random"]
    assert all(r["status"] == "completed" for r in results)
    assert (tmp_path / ".submitit").is_dir()


def test_ctrl_c_three_times_stops_at_once_and_a_late_ctrl_c_exits_without_a_traceback():
    """One or two Ctrl-C: the same stop request (a checkpoint after the current step); a third: out at once. A Ctrl-C
    that arrives after training, while the outputs are written, ends the process with 130 once they are written."""
    from attent_vision.engine.preemption import StopRequested

    stop = StopRequested()
    stop._handle(signal.SIGINT, None)
    stop._handle(signal.SIGINT, None)
    assert stop.pending == signal.SIGINT
    with pytest.raises(KeyboardInterrupt):
        stop._handle(signal.SIGINT, None)
    late = StopRequested()
    late.install()
    late._handle(signal.SIGINT, None)  # as if it came while finish() wrote results.json
    with pytest.raises(SystemExit) as ended:
        late.restore_and_resend_late()
    assert ended.value.code == 130 and signal.getsignal(signal.SIGINT) != late._handle  # handed back
