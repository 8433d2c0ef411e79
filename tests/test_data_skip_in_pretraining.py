"""skip_bad_samples end to end: a pretraining run over a folder with a truncated image stops with an error naming
the file, or (opted in) finishes, and its results.json counts the skipped sample and names its file. Skipping keeps
the plan: every planned optimizer step runs, whether bad files are found while scanning (empty files) or only when
they load (truncated ones), and data that is all bad ends the run in one line with ``status: failed``. Also the
pretraining data configs resolve their roots from the environment."""

import json
import shutil

import pytest

from attent_vision.data.pretrain.embedded import SyntheticSettings, ensure_synthetic_dataset
from attent_vision.engine.results import read_results
from attent_vision.errors import DataError
from attent_vision.pretraining.trainer import pretrain

from conftest import compose_train, run_in_process


@pytest.fixture(scope="module")
def damaged_folder(tmp_path_factory):
    """A copy of a tiny synthetic pretraining folder with one truncated training rgb file."""
    source = ensure_synthetic_dataset(SyntheticSettings(num_train=16, num_val=8, image_size=40),
                                      tmp_path_factory.mktemp("cache"))
    root = tmp_path_factory.mktemp("damaged") / "data"
    shutil.copytree(source, root)
    bad = sorted((root / "train" / "rgb").glob("*/*.png"))[3]
    bad.write_bytes(bad.read_bytes()[:80])
    return root, bad


def overrides(root, *extra):
    return ["debug=smoke", "data=folder", f"data.root={root}", "selection=none", "trainer.epochs=1",
            "trainer.batch_size=8", "trainer.num_vis_samples=0", *extra]


def test_bad_file_stops_the_run_naming_it(damaged_folder, tmp_path):
    root, bad = damaged_folder
    with pytest.raises(DataError, match=rf"cannot decode .*{bad.parent.name}/{bad.name}.*skip_bad_samples=true"):
        pretrain(compose_train(overrides(root)), tmp_path / "run")


def test_skip_bad_samples_counts_and_reports_it(damaged_folder, tmp_path):
    root, bad = damaged_folder
    results = pretrain(compose_train(overrides(root, "data.skip_bad_samples=true")), tmp_path / "run")
    assert results["status"] == "completed"
    on_disk = read_results(tmp_path / "run" / "results.json")
    assert on_disk["bad_samples"] == 1  # one epoch visits the sample once
    assert len(on_disk["bad_examples"]) == 1 and str(bad) in on_disk["bad_examples"][0]
    assert on_disk["samples_seen"] == 16  # the plan's count: the skipped sample was part of the epoch


def test_pretraining_data_configs_take_roots_from_the_environment(monkeypatch):
    monkeypatch.setenv("IMAGENET_S50_PRETRAIN", "/data/pretrain-50")
    monkeypatch.setenv("ATTENT_VISION_DATA", "/data/mine")
    cfg = compose_train(["data=imagenet_s50"])
    assert cfg.data.name == "folder" and cfg.data.root == "/data/pretrain-50" and cfg.data.val_split is None
    assert compose_train(["data=folder"]).data.root == "/data/mine"
    assert compose_train([]).data.name == "synthetic"


@pytest.fixture(scope="module")
def intact_32(tmp_path_factory):
    return ensure_synthetic_dataset(SyntheticSettings(num_train=32, num_val=8, image_size=40),
                                    tmp_path_factory.mktemp("cache32"))


def damaged_copy(source, folder, damage, every=2):
    """A copy of ``source`` with ``damage`` applied to every ``every``-th training rgb file; returns (root, files)."""
    root = folder / "data"
    shutil.copytree(source, root)
    files = sorted((root / "train" / "rgb").glob("*/*.png"))[::every]
    for path in files:
        damage(path)
    return root, files


def empty(path):
    path.write_bytes(b"")


def truncated(path):
    path.write_bytes(path.read_bytes()[:80])


def assert_the_plan_ran(results):
    """Every epoch ran its planned optimizer steps and samples: planned = executed."""
    assert results["status"] == "completed"
    assert results["optimizer_steps"] == results["planned_optimizer_steps"]
    steps_before = 0
    for epoch in results["history"]:
        assert epoch["global_step"] - steps_before == epoch["steps"], epoch
        steps_before = epoch["global_step"]
    assert results["samples_seen"] == sum(epoch["samples"] for epoch in results["history"])


def test_empty_files_are_left_out_before_planning(intact_32, tmp_path):
    root, files = damaged_copy(intact_32, tmp_path, empty)  # half of the rgb files: 16 of 32 samples
    with pytest.raises(DataError, match=rf"{files[0]} is empty \(0 bytes\).*skip_bad_samples=true"):
        pretrain(compose_train(overrides(root, "selection=soft", "trainer.epochs=5")), tmp_path / "strict")
    results = pretrain(compose_train(overrides(root, "selection=soft", "trainer.epochs=5",
                                               "data.skip_bad_samples=true")), tmp_path / "run")
    assert results["num_train_samples"] == 16 and results["skipped_at_scan"] == 16  # planned for the 16 good ones
    assert results["bad_samples"] == 0  # nothing left to fail while training
    assert_the_plan_ran(results)
    assert all(s["size"] < 16 and not s.get("repeated") for s in results["selections"])  # from 16: none short


def test_files_that_fail_only_when_loaded_keep_the_planned_steps(intact_32, tmp_path):
    root, files = damaged_copy(intact_32, tmp_path, truncated)  # 16 of 32 fail to decode, found while loading
    results = pretrain(compose_train(overrides(root, "selection=soft", "trainer.epochs=5",
                                               "data.skip_bad_samples=true")), tmp_path / "run")
    assert_the_plan_ran(results)
    assert results["num_train_samples"] == 32 and results["bad_samples"] == 16  # each bad file once, not per epoch
    assert all(any(str(path) in message for path in files) for message in results["bad_examples"])
    # The last cycle's subsets (0.8 of 32) find only the 16 loadable samples: the rest of each is filled by repeats.
    assert [s.get("repeated", 0) for s in results["selections"]] == [max(s["size"] - 16, 0)
                                                                     for s in results["selections"]]
    assert results["selections"][-1]["size"] > 16 and results["selections"][-1]["repeated"] > 0


def test_data_that_is_all_bad_ends_the_run_in_one_line_as_failed(intact_32, tmp_path):
    root, files = damaged_copy(intact_32, tmp_path / "empty", empty, every=1)
    with pytest.raises(DataError, match=r"no complete samples found under .*train.*all 32 were left out while scanning"
                                        r" \(first: .* is empty \(0 bytes\)"):
        pretrain(compose_train(overrides(root, "data.skip_bad_samples=true")), tmp_path / "scan")
    assert not (tmp_path / "scan" / "results.json").exists()  # refused before the run started

    root, files = damaged_copy(intact_32, tmp_path / "truncated", truncated, every=1)
    run = tmp_path / "run"
    out = run_in_process(["train.py", *overrides(root, "data.skip_bad_samples=true"), f"hydra.run.dir={run}"])
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    (line,) = [line for line in out.stderr.splitlines() if "ERROR" in line]
    assert "error: every training sample of epoch 1 failed to load (32 skipped, first: cannot decode" in line
    assert "fix or replace the files under data.root" in line
    results = json.loads((run / "results.json").read_text())
    assert results["status"] == "failed" and results["error"] in line and results["exit_code"] == 2
    assert results["bad_samples"] == 32 and "train loss" not in out.stderr  # no made-up loss of 0


def test_a_validation_set_that_is_all_bad_is_an_error_not_a_loss_of_zero(intact_32, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(intact_32, root)
    for path in (root / "val" / "rgb").glob("*/*.png"):
        truncated(path)
    with pytest.raises(DataError, match=r"every validation sample failed to load \(8 skipped, first: cannot decode"):
        pretrain(compose_train(overrides(root, "data.skip_bad_samples=true")), tmp_path / "run")
    assert read_results(tmp_path / "run" / "results.json")["status"] == "failed"
