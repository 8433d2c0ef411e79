"""A full disk or a run folder that cannot be written is one line naming the path, what went wrong (with the free
space when the disk is full) and what to do; the write's temporary file is removed and the previous file kept."""

import builtins
import errno
import json
import logging
import os
from pathlib import Path

import pytest
import torch

from attent_vision.engine.checkpoint import CheckpointManager
from attent_vision.engine.results import read_results, write_json_atomic
from attent_vision.errors import StorageError
from attent_vision.pretraining.trainer import pretrain
from attent_vision.storage import check_writable

from conftest import compose_train, run_cli


def full_disk_after_a_few_bytes(obj, f, *args, **kwargs):
    """Stands in for a serializer that meets a full disk: it writes a little, then the OS refuses. torch's zip writer
    reports it as a RuntimeError raised while handling the OSError, as it does on a real full disk."""
    f.write(b"partial")
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 495872 vs 495760")


def assert_one_line_about_a_full_disk(message: str, path: Path) -> None:
    assert "\n" not in message and f"cannot write {path}: no space left on the device (" in message
    assert " free on the disk of " in message and "free up space" in message
    assert "rerun the same command: it continues from the last checkpoint" in message


def test_full_disk_while_saving_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    manager = CheckpointManager(tmp_path, keep_last=1)
    first = manager.save({"w": torch.ones(3)}, 1)
    before = first.read_bytes()
    monkeypatch.setattr(torch, "save", full_disk_after_a_few_bytes)
    with pytest.raises(StorageError) as error:
        manager.save({"w": torch.zeros(3)}, 2)
    assert_one_line_about_a_full_disk(str(error.value), tmp_path / "step_00000002.pt")
    assert [p.name for p in tmp_path.iterdir()] == [first.name] and first.read_bytes() == before  # no .tmp, kept


def test_full_disk_while_writing_results_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    write_json_atomic({"status": "running", "optimizer_steps": 3}, path)
    before = path.read_bytes()

    def full_disk(data, f, **kwargs):
        f.write('{"status": ')
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(json, "dump", full_disk)
    with pytest.raises(StorageError) as error:
        write_json_atomic({"status": "completed", "optimizer_steps": 9}, path)
    assert_one_line_about_a_full_disk(str(error.value), path)
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"] and path.read_bytes() == before


def test_full_disk_in_the_middle_of_a_run_fails_it_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    real_save, saves = torch.save, []

    def second_checkpoint_meets_a_full_disk(obj, f, *args, **kwargs):
        saves.append(1)
        if len(saves) == 2:
            return full_disk_after_a_few_bytes(obj, f)
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", second_checkpoint_meets_a_full_disk)
    with pytest.raises(StorageError) as error:
        pretrain(compose_train(["debug=smoke", "checkpoint.every_steps=2", "trainer.progress_bar=false"]), tmp_path)
    assert_one_line_about_a_full_disk(str(error.value), tmp_path / "checkpoints" / "step_00000004.pt")
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_00000002.pt"]
    results = read_results(tmp_path / "results.json")  # never left saying "running"
    assert results["status"] == "failed" and results["error"] == str(error.value) and results["exit_code"] == 2
    assert CheckpointManager.load(tmp_path / "checkpoints" / "step_00000002.pt")["progress"]["global_step"] == 2


@pytest.fixture
def read_only(monkeypatch):
    """Makes a folder read-only: chmod 0o555; as root, whom permissions do not stop, the same refusal (EACCES) is
    simulated where Python asks the OS to create a folder or open a file for writing inside it."""
    made = []

    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        made.append(folder)
        if os.geteuid() != 0:
            folder.chmod(0o555)
            return folder
        real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

        def inside(path) -> bool:
            return isinstance(path, (str, os.PathLike)) and Path(os.path.abspath(path)).is_relative_to(folder)

        def refuse(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))

        def open_(file, mode="r", *args, **kwargs):
            if inside(file) and any(c in mode for c in "wax+"):
                refuse(file)
            return real_open(file, mode, *args, **kwargs)

        def os_open(path, flags, *args, **kwargs):
            if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                refuse(path)
            return real_os_open(path, flags, *args, **kwargs)

        def mkdir(path, *args, **kwargs):
            if inside(path) and not os.path.isdir(path):
                refuse(path)
            return real_mkdir(path, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", open_)
        monkeypatch.setattr(os, "open", os_open)
        monkeypatch.setattr(os, "mkdir", mkdir)
        return folder

    yield make
    for folder in made:
        folder.chmod(0o755)


def test_a_read_only_run_folder_is_one_line_before_any_work(tmp_path, read_only):
    run = read_only(tmp_path / "run")
    with pytest.raises(StorageError) as error:  # what the entry points check before Hydra writes there
        check_writable(run)
    assert str(error.value) == (f"cannot write {run}: permission denied; make the folder writable for this user, or "
                                "choose another run folder (hydra.run.dir)")
    with pytest.raises(StorageError) as error:  # the trainer, through the Python API
        pretrain(compose_train(["debug=smoke"]), run)
    assert str(error.value).startswith(f"cannot write {run / '.lock'}: permission denied; make the folder writable")
    assert not list(run.iterdir())


def test_a_run_folder_the_cli_cannot_create_is_one_line(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the run folder's parent should be")
    out = run_cli(["train.py", "debug=smoke", f"hydra.run.dir={blocker / 'run'}"])
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    (line,) = out.stderr.strip().splitlines()
    assert f"error: cannot write {blocker / 'run'}: a folder on its path is a file; move that file away" in line
    assert blocker.read_text() == "a file where the run folder's parent should be"


def test_a_log_file_on_a_full_disk_is_one_warning_then_the_console_only(tmp_path, capsys):
    from attent_vision.cli.log_file import RunLogFile

    handler = RunLogFile(tmp_path / "train.log")
    logger = logging.getLogger("test_storage_errors.full_disk_log")
    logger.addHandler(handler)
    try:
        logger.warning("written")
        handler.flush()

        class FullDisk:
            def write(self, text):
                raise OSError(errno.ENOSPC, "No space left on device")

            def flush(self):
                pass

        handler.stream = FullDisk()
        for i in range(3):
            logger.warning("line %d", i)
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert f"cannot write {tmp_path / 'train.log'}: no space left on the device (" in line
    assert line.endswith("the log continues on the console only")
    assert (tmp_path / "train.log").read_text() == "written\n"
