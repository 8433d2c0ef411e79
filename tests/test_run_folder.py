"""One run per run folder: a second run into a folder in use is refused in one line, a lock left by a dead process
is taken over, and starting over in a folder that has checkpoints needs an explicit choice."""

import json
import os
import subprocess
import sys

import pytest

from attent_vision.engine.run_lock import RunFolderInUse, RunFolderLock
from attent_vision.errors import CheckpointError
from attent_vision.pretraining.trainer import pretrain

from conftest import compose_train


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, sys.argv[1]);"
        "from attent_vision.engine.run_lock import RunFolderLock;"
        "held = RunFolderLock(sys.argv[2]).acquire(); print('locked', flush=True);"
        " time.sleep(60)"), ".", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderInUse, match=f"in use by pid {holder.pid}"):
            RunFolderLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    # The holder died without releasing: its lock is gone with it and the folder is taken over (with a warning).
    lock = RunFolderLock(tmp_path).acquire()
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    lock.release()
    assert (tmp_path / ".lock").read_text() == ""


def test_starting_over_in_a_folder_with_checkpoints_needs_archive(tmp_path):
    first = pretrain(compose_train(["debug=smoke", "trainer.stop_after_steps=3"]), tmp_path)
    assert first["status"] == "interrupted"
    with pytest.raises(CheckpointError, match="checkpoint.resume=archive"):
        pretrain(compose_train(["debug=smoke", "checkpoint.resume=never"]), tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.pt")) == ["step_00000003.pt"]  # untouched
    fresh = pretrain(compose_train(["debug=smoke", "trainer.epochs=3", "checkpoint.resume=archive"]), tmp_path)
    assert fresh["status"] == "completed" and fresh["optimizer_steps"] == fresh["planned_optimizer_steps"]
    (archived,) = (tmp_path / "archived").iterdir()
    assert (archived / "checkpoints" / "step_00000003.pt").is_file() and (archived / "results.json").is_file()


def test_two_runs_started_into_one_folder_the_second_is_refused_in_one_line(tmp_path):
    import time

    from conftest import REPO, run_in_process

    first = subprocess.Popen([sys.executable, "train.py", "debug=smoke", "trainer.epochs=40",
                              f"hydra.run.dir={tmp_path}"], cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not ((tmp_path / ".lock").is_file() and (tmp_path / ".lock").read_text()) and time.time() < deadline:
            time.sleep(0.2)
        second = run_in_process(["train.py", "debug=smoke", f"hydra.run.dir={tmp_path}"])
    finally:
        first.terminate()
        first.wait()
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert f"is in use by pid {first.pid}" in second.stderr and "another hydra.run.dir" in second.stderr


def test_a_refused_invocation_leaves_the_runs_hydra_metadata_as_it_was(tmp_path):
    from conftest import run_in_process as run_cli  # the Hydra app in this process: metadata is written the same way

    run = ["train.py", "debug=smoke", f"hydra.run.dir={tmp_path}"]
    first = run_cli(run + ["trainer.stop_after_steps=2"])
    assert first.returncode == 0, first.stderr[-2000:]
    metadata = tmp_path / ".hydra"

    def current() -> dict[str, str]:
        return {name: (metadata / name).read_text() for name in ("config.yaml", "overrides.yaml", "hydra.yaml")}

    accepted = current()
    assert "trainer.stop_after_steps=2" in accepted["overrides.yaml"]
    refusals = {"checkpoint.resume=never": "checkpoint.resume=archive",  # starting over over checkpoints
                "selection=hard": "selection.strategy: 'soft' -> 'hard'",  # resuming with other settings
                "selection.temperature=0": "selection.temperature"}  # a bad value
    for override, message in refusals.items():
        refused = run_cli(run + [override])
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr[-2000:]
        assert current() == accepted, f"{override} replaced the run's Hydra metadata"
    resumed = run_cli(run + ["trainer.stop_after_steps=1"])  # an accepted invocation's metadata becomes the run's
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "trainer.stop_after_steps=1" in current()["overrides.yaml"]
