"""What damage and interruptions do to the data, and what the next run does about it (issue 28, cases 10 and 11):

- a synthetic-data cache folder that lost its completion marker is moved aside with one warning and written anew
  (it used to fail with OSError [Errno 39] on every run);
- temporary folders left by an interrupted generation are removed at the next start when no writer will finish
  them, and never while their writer runs; a real SIGTERM during generation leaves none behind;
- a symbolic link loop among the data files is one line naming it, or with skip mode a sample left out and counted
  (it used to be an OSError [Errno 40] traceback, in both modes);
- one bad file counts once in results.json ``bad_samples``, however many epochs (and invocations) meet it.
"""

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from attent_vision.data import cache as cache_module
from attent_vision.data.downstream.embedded import ensure_synthetic_downstream
from attent_vision.data.pretrain.embedded import SyntheticSettings, ensure_synthetic_dataset
from attent_vision.data.pretrain.folder import MultiModalFolder
from attent_vision.data.skipping import BadSampleLog, collate_skipping_bad, first_sightings
from attent_vision.engine.results import read_results
from attent_vision.errors import DataError
from attent_vision.pretraining.trainer import pretrain

from conftest import REPO, compose_train, run_in_process

TINY = SyntheticSettings(num_train=4, num_val=2, image_size=16)
TINY_DOWNSTREAM = {"num_classes": 2, "train_per_class": 1, "val_per_class": 1, "semi_per_class": 1, "image_size": 16,
                   "nyu_train": 1, "nyu_test": 1, "nyu_width": 16, "nyu_height": 12}


def listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ---- a cache folder without its completion marker ------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["pretraining", "downstream"])
def test_a_cache_folder_that_lost_its_marker_is_moved_aside_and_written_anew(tmp_path, caplog, kind):
    ensure, marker = {"pretraining": (lambda: ensure_synthetic_dataset(TINY, tmp_path), "samples.csv"),
                      "downstream": (lambda: ensure_synthetic_downstream(tmp_path, **TINY_DOWNSTREAM),
                                     "settings.json")}[kind]
    root = ensure()
    complete = listing(root)
    (root / marker).unlink()  # damage after the fact: a file deleted by hand, a partial restore
    with caplog.at_level(logging.WARNING, logger=cache_module.__name__):
        assert ensure() == root
        again = ensure()  # and the next run finds it whole, silently
    assert again == root and listing(root) == complete and ".writer" not in complete
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    (aside,) = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert len(warnings) == 1 and str(root) in warnings[0] and str(aside) in warnings[0], warnings
    assert f"lacked its completion marker '{marker}'" in warnings[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([root.name, aside.name])  # no temporary folder left


def test_a_cache_path_that_is_a_file_is_moved_aside_too(tmp_path, caplog):
    root = ensure_synthetic_dataset(TINY, tmp_path)
    shutil.rmtree(root)
    root.write_text("not a folder")  # e.g. a failed download or copy under the same name
    with caplog.at_level(logging.WARNING, logger=cache_module.__name__):
        assert (ensure_synthetic_dataset(TINY, tmp_path) / "samples.csv").is_file()
    assert sum(".damaged-" in r.getMessage() for r in caplog.records) == 1


# ---- temporary folders of interrupted generations ------------------------------------------------------------------

def fake_temp(cache, name, *, writer=None, age_s=0.0):
    """A temporary folder as an interrupted generation leaves it, every entry ``age_s`` old."""
    folder = cache / name
    (folder / "train" / "rgb" / "c00").mkdir(parents=True)
    (folder / "train" / "rgb" / "c00" / "train_000000.png").write_bytes(b"\x89PNG")
    if writer is not None:
        (folder / ".writer").write_text(json.dumps(writer))
    stamp = time.time() - age_s
    for path in [*folder.rglob("*"), folder]:
        os.utime(path, (stamp, stamp))
    return folder


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("kind", ["pretraining", "downstream"])
def test_stale_temporary_folders_are_removed_and_live_ones_kept(tmp_path, kind):
    here, old, quiet = socket.gethostname(), cache_module.STALE_AFTER_S + 60, cache_module.DEAD_WRITER_QUIET_S + 60
    dead = dead_pid()
    stale = [
        fake_temp(tmp_path, "synthetic-0123456789.0a1b2c3d.tmp", age_s=old),  # no writer file (a kill before it)
        fake_temp(tmp_path, "synthetic-downstream-abc.11111111.tmp", writer={"pid": dead, "host": here}, age_s=quiet),
        fake_temp(tmp_path, "synthetic-9876543210.22222222.tmp", writer={"pid": 1, "host": "elsewhere"}, age_s=old),
    ]
    kept = [
        fake_temp(tmp_path, "synthetic-0123456789.33333333.tmp"),  # fresh, writer unknown: may be writing now
        fake_temp(tmp_path, "synthetic-0123456789.44444444.tmp", writer={"pid": os.getpid(), "host": here},
                  age_s=10 * old),  # its writer runs on this host: never touched, however old
        fake_temp(tmp_path, "synthetic-0123456789.55555555.tmp", writer={"pid": 1, "host": "elsewhere"}),
        fake_temp(tmp_path, "synthetic-0123456789.88888888.tmp", writer={"pid": dead, "host": here}),  # still
        # changing: a host of the same name whose processes this one cannot see
        fake_temp(tmp_path, "notes.66666666.tmp", age_s=old),  # not one of ours
        fake_temp(tmp_path, "synthetic-0123456789.damaged-20250101-000000-1", age_s=old),  # kept for the user
    ]
    if kind == "pretraining":
        root = ensure_synthetic_dataset(TINY, tmp_path)
    else:
        root = ensure_synthetic_downstream(tmp_path, **TINY_DOWNSTREAM)
    assert not any(folder.exists() for folder in stale)
    assert all(folder.is_dir() for folder in kept)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([root.name, *(p.name for p in kept)])
    # An existing cache folder is no reason to skip the clean-up: a kill leaves its temporary folder beside the
    # copy that another process completed.
    late = fake_temp(tmp_path, "synthetic-downstream-abc.77777777.tmp", age_s=old)
    ensure_synthetic_dataset(TINY, tmp_path)
    assert not late.exists()


GENERATE = """
import sys
from attent_vision.data.pretrain.embedded import SyntheticSettings, ensure_synthetic_dataset
ensure_synthetic_dataset(SyntheticSettings(num_train=50000, num_val=8, image_size=40), sys.argv[1])
"""


def test_sigterm_during_generation_leaves_no_temporary_folder(tmp_path):
    cache = tmp_path / "cache"
    child = subprocess.Popen([sys.executable, "-c", GENERATE, str(cache)], cwd=REPO, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(cache.glob("synthetic-*.tmp/train/rgb/*/*.png")):  # writing images by now
            assert child.poll() is None and time.monotonic() < deadline, child.stderr.read()
            time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == -signal.SIGTERM, stderr  # ended by the signal, as before: the sender sees the same
    assert "Traceback" not in stderr, stderr
    assert list(cache.iterdir()) == []  # neither the partial copy nor a final folder


# ---- a symbolic link loop among the data files ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def intact_16(tmp_path_factory):
    return ensure_synthetic_dataset(SyntheticSettings(num_train=16, num_val=8, image_size=40),
                                    tmp_path_factory.mktemp("cache16"))


def copy_with_loop(source, folder, modality="rgb"):
    """A copy of ``source`` where one training sample's ``modality`` file is a link to itself."""
    root = folder / "data"
    shutil.copytree(source, root)
    victim = sorted((root / "train" / modality).glob("*/*.png"))[5]
    victim.unlink()
    os.symlink(victim.name, victim)  # victim -> victim: every stat of it fails with ELOOP
    return root, victim


@pytest.mark.parametrize("modality", ["rgb", "depth"])
def test_a_symlink_loop_is_one_error_naming_it_or_one_skipped_sample(intact_16, tmp_path, modality):
    root, loop = copy_with_loop(intact_16, tmp_path, modality)
    with pytest.raises(DataError, match=rf"^{loop} is a symbolic link loop .*; fix or remove it, or set "
                                        r"data.skip_bad_samples=true"):
        MultiModalFolder(root, "train", ["rgb", "depth", "semseg"])
    folder = MultiModalFolder(root, "train", ["rgb", "depth", "semseg"], skip_bad_samples=True)
    assert len(folder) == 15 and len(folder.skipped) == 1  # one problem: not also a missing partner elsewhere
    assert folder.skipped[0].startswith(f"{loop} is a symbolic link loop")
    assert loop.stem not in {s.stem for s in folder.samples}


def test_a_symlink_loop_in_a_training_run_is_one_line_or_a_counted_skip(intact_16, tmp_path):
    root, loop = copy_with_loop(intact_16, tmp_path)
    args = ["debug=smoke", "data=folder", f"data.root={root}", "selection=none", "trainer.epochs=1",
            "trainer.batch_size=8", "trainer.num_vis_samples=0"]
    out = run_in_process(["train.py", *args, f"hydra.run.dir={tmp_path / 'strict'}"])
    assert out.returncode == 2 and "Traceback" not in out.stderr and "Errno" not in out.stderr, out.stderr[-3000:]
    (line,) = [line for line in out.stderr.splitlines() if "ERROR" in line]
    assert f"{loop} is a symbolic link loop" in line and "skip_bad_samples=true" in line
    results = pretrain(compose_train([*args, "data.skip_bad_samples=true"]), tmp_path / "skip")
    assert results["status"] == "completed"
    assert results["num_train_samples"] == 15 and results["skipped_at_scan"] == 1


# ---- one count per bad file ----------------------------------------------------------------------------------------

def test_first_sightings_keep_each_index_once_across_calls():
    seen = [7]
    new, messages = first_sightings(seen, [3, 7, 3, 9], ["a3", "a7", "a3 again", "a9"])
    assert new == [3, 9] and messages == ["a3", "a9"]
    log = BadSampleLog()
    for _ in range(2):  # a padded distributed sampler may hand the same sample twice in one pass
        log.update(collate_skipping_bad([{"index": 4, "bad": "x4"}, {"index": 5, "bad": "x5"}]))
    assert log.count == 2 and log.examples == ["x4", "x5"]


@pytest.fixture(scope="module")
def one_truncated_file(intact_16, tmp_path_factory):
    root = tmp_path_factory.mktemp("truncated") / "data"
    shutil.copytree(intact_16, root)
    bad = sorted((root / "train" / "rgb").glob("*/*.png"))[3]
    bad.write_bytes(bad.read_bytes()[:80])
    return root, bad


def test_one_bad_file_counts_once_however_often_the_run_meets_it(one_truncated_file, tmp_path, caplog):
    root, bad = one_truncated_file
    args = ["debug=smoke", "data=folder", f"data.root={root}", "data.skip_bad_samples=true", "selection=none",
            "trainer.epochs=2", "trainer.batch_size=8", "trainer.num_vis_samples=0"]  # two full epochs
    with caplog.at_level(logging.WARNING):
        results = pretrain(compose_train(args), tmp_path / "run")
    visits = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ") and str(bad) in
              r.getMessage()]
    assert len(visits) == 2  # met in both epochs (it used to count 2) ...
    assert results["status"] == "completed" and results["bad_samples"] == 1  # ... counted once
    assert len(results["bad_examples"]) == 1 and str(bad) in results["bad_examples"][0]

    # The count is the run's, not the invocation's: a resumed run does not count it again.
    run = tmp_path / "resumed"
    first = pretrain(compose_train([*args, "trainer.stop_after_steps=2"]), run)  # epoch 1 of 2
    assert first["status"] == "interrupted" and first["bad_samples"] == 1
    assert pretrain(compose_train(args), run)["status"] == "completed"
    assert read_results(run / "results.json")["bad_samples"] == 1
