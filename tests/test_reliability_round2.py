"""Issue 28 ("nothing silently wrong, round 2"), cases 4, 7, 9 and part of 10: fine-tuning refuses an unfinished
pretraining folder; a batch larger than the training set is refused; a permission problem met while reading is
"cannot read", never a run folder's "cannot write"; a run-folder name too long, a bad $WANDB_MODE and a cut-short
results.json are one line each; a second SIGTERM while stopping is the same request.

Tests run as root here, and root reads and writes whatever the permissions say: ``unreadable`` then simulates a
``chmod 000`` where Python asks the OS for it (listing the folder, opening or stat-ing what is inside), raising the
EACCES the OS would; as another user it is a real ``chmod 000``."""

import builtins
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from attent_vision.engine.results import IncompleteResults, read_results
from attent_vision.engine.run_lock import RunFolderLock
from attent_vision.engine.tracking import check_wandb_mode
from attent_vision.errors import CheckpointError, ConfigError, StorageError
from attent_vision.finetuning.init import read_init_checkpoint
from attent_vision.finetuning.suite import compose_finetune
from attent_vision.finetuning.trainer import finetune
from attent_vision.pretraining.trainer import pretrain
from attent_vision.report.cli import build_report
from attent_vision.storage import check_writable, reading, unattributed_error

from conftest import REPO, compose_train, run_in_process

# Pico fine-tuning at 32 px (as tests/test_finetune_cli.py): the plumbing, not the learning.
TINY_FINETUNE = ["model.scratch_name=multivit_pico", "model.scratch_patch_size=8", "model.image_size=32",
                 "trainer.epochs=1", "trainer.progress_bar=false", "task.head.feature_dim=8", "task.head.embed_dim=32"]


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr[-3000:]
    return [line for line in stderr.splitlines() if "error:" in line.lower()]


def one_error_line(stderr: str) -> str:
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


# ------------------------------------------------------------------------------------------------------------------
# Case 4: init_from=<a pretraining folder whose run did not finish>


@pytest.fixture(scope="module")
def interrupted_pretraining(tmp_path_factory):
    """A smoke pretraining stopped after 8 of its planned steps: checkpoints/step_00000008.pt, no pretrained.pth."""
    run = tmp_path_factory.mktemp("interrupted") / "run"
    results = pretrain(compose_train(["debug=smoke", "trainer.stop_after_steps=8", "trainer.progress_bar=false",
                                      "trainer.num_vis_samples=0"]), run)
    assert results["status"] == "interrupted" and results["optimizer_steps"] == 8
    assert not (run / "pretrained.pth").exists()
    return run, results["planned_optimizer_steps"]


def test_an_interrupted_pretraining_folder_is_refused_and_a_named_checkpoint_is_fine_tuned(interrupted_pretraining,
                                                                                           tmp_path):
    run, planned = interrupted_pretraining
    newest = run / "checkpoints" / "step_00000008.pt"
    out = run_in_process(["finetune.py", f"init_from={run}", f"hydra.run.dir={tmp_path / 'ft'}", *TINY_FINETUNE])
    assert out.returncode == 2
    line = one_error_line(out.stderr)
    assert f"init_from={run} holds no final weights" in line
    assert f"its run was interrupted at step 8 of {planned} (by trainer.stop_after_steps)" in line
    assert f"name a checkpoint file explicitly (init_from={newest})" in line and "resume the pretraining" in line
    assert not (tmp_path / "ft" / "checkpoints").exists()
    # Named explicitly, the same weights are fine-tuned, with a warning that says how far their run got.
    out = run_in_process(["finetune.py", f"init_from={newest}", f"hydra.run.dir={tmp_path / 'ft2'}",
                          "trainer.stop_after_steps=1", *TINY_FINETUNE])
    assert out.returncode == 0, out.stderr[-3000:]
    warning = next(line for line in out.stderr.splitlines() if "unfinished training checkpoint" in line)
    assert "[WARNING]" in warning and f"(step 8 of {planned} planned; its run interrupted)" in warning
    assert read_results(tmp_path / "ft2" / "results.json")["init"]["init_from"] == str(newest)


def copy_of(run: Path, folder: Path, **results_changes) -> Path:
    """A copy of the run folder ``run`` with fields of its results.json changed."""
    copy = folder / "run"
    shutil.copytree(run, copy)
    results = read_results(copy / "results.json")
    (copy / "results.json").write_text(json.dumps({**results, **results_changes}))
    return copy


def test_a_running_crashed_failed_or_diverged_pretraining_folder_is_refused_naming_its_state(
        interrupted_pretraining, tmp_path):
    run, planned = interrupted_pretraining
    still_running = copy_of(run, tmp_path / "a", status="running")
    lock = RunFolderLock(still_running).acquire()  # this process holds it, as a live run does
    try:
        with pytest.raises(CheckpointError) as error:
            read_init_checkpoint(still_running)
    finally:
        lock.release()
    assert f"its run is still running at step 8 of {planned} (pid {os.getpid()} on {socket.gethostname()}" in str(
        error.value) and "wait for it to finish" in str(error.value)
    # The same folder once that process is gone without a word (kill -9): results.json still says running.
    with pytest.raises(CheckpointError, match="its run ended without finishing at step 8 .* killed or crashed"):
        read_init_checkpoint(still_running)
    failed = copy_of(run, tmp_path / "b", status="failed", error="cannot write x: no space left on the device")
    with pytest.raises(CheckpointError, match=r"its run failed at step 8 .*\(cannot write x: no space left"):
        read_init_checkpoint(failed)
    diverged = copy_of(run, tmp_path / "c", status="diverged", diverged={"step": 5, "what": "loss"})
    with pytest.raises(CheckpointError) as error:
        read_init_checkpoint(diverged)
    assert "its run diverged (non-finite loss at step 5)" in str(error.value)
    assert f"init_from={diverged / 'checkpoints' / 'step_00000008.pt'}" in str(error.value)
    assert "\n" not in str(error.value)


# ------------------------------------------------------------------------------------------------------------------
# Case 7: trainer.batch_size above the training set


def test_a_batch_larger_than_the_training_set_is_refused_in_both_stages(tmp_path):
    with pytest.raises(ConfigError) as error:
        pretrain(compose_train(["debug=smoke", "trainer.batch_size=1000"]), tmp_path / "pre")
    assert str(error.value) == (
        "trainer.batch_size=1000 is larger than the training set (96 samples): an epoch could not fill one batch, and "
        "the learning rate would be scaled for the larger batch (optim.blr * batch_size / 256); set "
        "trainer.batch_size to at most 96")
    with pytest.raises(ConfigError, match=r"trainer.batch_size=1000 is larger than the training set \(\d+ samples\)"):
        finetune(compose_finetune("imagenet_s50_cls", None, [*TINY_FINETUNE, "trainer.batch_size=1000"]),
                 tmp_path / "ft")
    assert not (tmp_path / "pre" / "checkpoints").exists() and not (tmp_path / "ft" / "checkpoints").exists()


def test_subset_epochs_smaller_than_the_batch_still_run(tmp_path):
    # Batch 64 of 96 samples: the first cycle's subsets (ratio 0.2: 19 samples) are smaller than one batch, as planned.
    results = pretrain(compose_train(["debug=smoke", "trainer.batch_size=64",
                                      "trainer.progress_bar=false", "trainer.num_vis_samples=0"]), tmp_path)
    assert results["status"] == "completed" and results["selections"][0]["size"] < 64
    assert results["optimizer_steps"] == results["planned_optimizer_steps"]


# ------------------------------------------------------------------------------------------------------------------
# Case 9: read vs write


@pytest.fixture
def unreadable(monkeypatch):
    """``make(path)``: ``chmod 000`` on a folder or file. As root (whom permissions do not stop) the refusal is
    simulated where Python asks the OS: listing the folder, and stat-ing or opening anything inside it (a file: opening
    it), each raising the EACCES the OS would raise for another user."""
    made = []

    def make(path: Path) -> Path:
        made.append((path, path.stat().st_mode))
        if os.geteuid() != 0:
            path.chmod(0)
            return path
        is_dir = path.is_dir()

        def refused(target) -> bool:
            if not isinstance(target, (str, bytes, os.PathLike)) or isinstance(target, bytes):
                return False
            target = Path(os.path.abspath(target))
            return target != path and target.is_relative_to(path) if is_dir else target == path

        def deny(target):
            raise PermissionError(errno.EACCES, "Permission denied", str(target))

        def guard(real, listing=False):
            def call(target=".", *args, **kwargs):
                if refused(target) or (listing and is_dir and Path(os.path.abspath(target)) == path):
                    deny(target)
                return real(target, *args, **kwargs)
            return call

        monkeypatch.setattr(os, "scandir", guard(os.scandir, listing=True))
        monkeypatch.setattr(os, "listdir", guard(os.listdir, listing=True))
        monkeypatch.setattr(os, "stat", guard(os.stat))
        monkeypatch.setattr(os, "open", guard(os.open))
        monkeypatch.setattr(builtins, "open", guard(builtins.open))
        return path

    yield make
    for path, mode in made:
        path.chmod(mode)


def assert_a_read_problem(line: str, path: Path, setting: str, operation_known: bool = True) -> None:
    """``operation_known``: the reader said it reads (``reading()``); else a handler met the error unwrapped."""
    said = f"cannot read {path}: permission denied" if operation_known else f"cannot read or write {path}: permission"
    assert said in line and "make it readable for this user" in line and setting in line
    assert "cannot write" not in line and "hydra.run.dir" not in line and "run folder" not in line


def test_reading_names_the_refused_file_and_the_setting_to_change(tmp_path, unreadable):
    data = tmp_path / "data"
    (data / "a" / "cls").mkdir(parents=True)
    folder = unreadable(data / "a" / "cls")
    with pytest.raises(StorageError) as error:
        with reading(data):  # a reader that wraps a whole scan: the message names the folder refused
            sorted(os.scandir(folder))
    assert str(error.value) == (f"cannot read {folder}: permission denied; make it readable for this user "
                                "(chmod/chown), or point data.root at a copy this user can read")
    # A handler that does not know the operation: only the run folder is taken for a write.
    problem = PermissionError(errno.EACCES, "Permission denied", str(folder))
    assert_a_read_problem(str(unattributed_error(problem, tmp_path / "run")), folder, "data.root",
                          operation_known=False)
    inside = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "run" / "figure.png"))
    assert str(unattributed_error(inside, tmp_path / "run")).startswith(
        f"cannot write {tmp_path / 'run' / 'figure.png'}: permission denied; make the folder writable")


def test_an_unreadable_class_folder_is_a_read_problem_naming_it(smoke_data_root, tmp_path, unreadable):
    root = tmp_path / "data"
    shutil.copytree(smoke_data_root, root)
    folder = unreadable(sorted((root / "train" / "depth").iterdir())[1])
    out = run_in_process(["train.py", "debug=smoke", "data=folder", f"data.root={root}",
                          f"hydra.run.dir={tmp_path / 'run'}"])
    assert out.returncode == 2
    assert_a_read_problem(one_error_line(out.stderr), folder, "data.root")


def test_an_unreadable_data_cache_is_a_read_problem_naming_it(smoke_data_root, tmp_path, unreadable):
    cache = tmp_path / "cache"
    shutil.copytree(smoke_data_root, cache / smoke_data_root.name)
    unreadable(cache / smoke_data_root.name)
    out = run_in_process(["train.py", "debug=smoke", f"data.cache_dir={cache}", f"hydra.run.dir={tmp_path / 'run'}"])
    assert out.returncode == 2
    line = one_error_line(out.stderr)
    assert f"cannot read {cache / smoke_data_root.name}/" in line and "make it readable" in line
    assert "point data.cache_dir at a copy" in line and "cannot write" not in line and "hydra.run.dir" not in line


def test_an_unreadable_init_from_is_a_read_problem_naming_it(interrupted_pretraining, tmp_path, unreadable):
    run, _ = interrupted_pretraining
    weights = tmp_path / "pretrained.pth"
    shutil.copy(run / "checkpoints" / "step_00000008.pt", weights)
    unreadable(weights)
    out = run_in_process(["finetune.py", f"init_from={weights}", f"hydra.run.dir={tmp_path / 'ft'}", *TINY_FINETUNE])
    assert out.returncode == 2
    line = one_error_line(out.stderr)
    assert f"cannot read {weights}: permission denied" in line
    assert_a_read_problem(line, weights, "point init_from at a copy this user can read")


# ------------------------------------------------------------------------------------------------------------------
# Case 10: one line instead of a traceback


def test_a_run_folder_name_over_255_bytes_is_one_line(tmp_path):
    long_name = "x" * 300
    out = run_in_process(["train.py", "debug=smoke", f"hydra.run.dir={tmp_path / long_name / 'run'}"])
    assert out.returncode == 2
    line = one_error_line(out.stderr)
    assert f"cannot write {tmp_path / long_name / 'run'}: the name 'xxxxxxxxxxxxxxxxxxxx...xxxxxxxxxxxx' on its path " \
           "is 300 bytes long, more than the 255 a file system allows" in line
    assert line.endswith("shorten hydra.run.dir (or the experiment_name or override-based job folder name it is "
                         "made of)")
    with pytest.raises(StorageError, match="shorten hydra.run.dir"):
        check_writable(tmp_path / ("y" * 256))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("value", ["bogus", ""])
def test_a_bad_wandb_mode_is_one_line_before_wandb_starts(tmp_path, monkeypatch, value):
    monkeypatch.setenv("WANDB_MODE", value)
    out = run_in_process(["train.py", "debug=smoke", "logger=wandb_offline", f"hydra.run.dir={tmp_path}"])
    assert out.returncode == 2
    line = one_error_line(out.stderr)
    shown = "empty" if value == "" else f"'{value}'"
    assert f"the environment variable WANDB_MODE is {shown}, which wandb refuses (it accepts online, offline" in line
    assert "disabled" in line and "unset it (logger.mode=offline then chooses)" in line
    assert not (tmp_path / "wandb").exists() and "pydantic" not in out.stderr
    monkeypatch.setenv("WANDB_MODE", "disabled")  # a valid value (conftest's) is left alone
    check_wandb_mode(OmegaConf.create({"mode": "offline"}))


def test_a_cut_short_results_json_is_listed_as_left_out_by_the_report(tmp_path):
    sweep = tmp_path / "multirun"
    out = run_in_process(["train.py", "-m", "debug=smoke", "selection=none", "trainer.epochs=1",
                          "data.synthetic.num_train=16", "data.synthetic.num_val=8", "trainer.batch_size=8",
                          "trainer.seed=0,1", "probe=none", f"hydra.sweep.dir={sweep}"])
    assert out.returncode == 0, out.stderr[-3000:]
    good, cut = sorted(sweep.glob("*/results.json"))
    cut.write_bytes(cut.read_bytes()[:200])
    with pytest.raises(IncompleteResults) as error:
        read_results(cut)
    message = (f"{cut} is not complete JSON (the run may still be writing it or was killed); rerun the report later "
               "or delete the file")
    assert str(error.value) == message and isinstance(error.value, ValueError)
    report = build_report([sweep])
    assert len(report["rows"]) == 1 and len(report["rows"][0]["runs"]) == 1  # the other run is reported
    assert f"| {cut.parent} | ? | - | unreadable | {message} |" in report["text"]
    good.write_bytes(b"")  # both unreadable: one line naming a file, no traceback
    out = subprocess.run([sys.executable, "-m", "attent_vision.report", str(sweep)], cwd=REPO, capture_output=True,
                         text=True, check=False)
    assert out.returncode == 2
    first = min(good, cut)
    assert one_error_line(out.stderr) == (f"error: {first} is not complete JSON (the run may still be writing it or "
                                          "was killed); rerun the report later or delete the file (and 1 more like it)")


SLOW_CHECKPOINT_DRIVER = """
import sys, time
from attent_vision.engine import checkpoint
real_save = checkpoint.atomic_torch_save

def slow_disk(*args, **kwargs):  # a checkpoint that takes a second to write, as on a busy network file system
    time.sleep(1.0)
    real_save(*args, **kwargs)

checkpoint.atomic_torch_save = slow_disk
sys.argv = ["train.py", *sys.argv[1:]]
from attent_vision.train import main
main()
"""


def test_two_sigterms_in_a_row_stop_once_with_a_checkpoint(tmp_path):
    """A second SIGTERM 0.3 s after the first, while the checkpoint of the first is being written: the same stop."""
    args = ["debug=smoke", "checkpoint.every_epochs=0", "trainer.progress_bar=false", f"hydra.run.dir={tmp_path}"]
    proc = subprocess.Popen([sys.executable, "-c", SLOW_CHECKPOINT_DRIVER, *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:  # blocks until the run logs: no polling
        seen.append(line)
        if "epoch 1/5 done" in line:
            break
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=0.3)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
    err = "".join(seen) + proc.communicate()[1]
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "received signal 15 again: still stopping after the current step" in err
    results = read_results(tmp_path / "results.json")
    assert results["status"] == "interrupted" and results["exit_code"] == 143
    assert (tmp_path / "checkpoints" / f"step_{results['optimizer_steps']:08d}.pt").is_file()
