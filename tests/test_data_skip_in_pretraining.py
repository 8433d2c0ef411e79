"""skip_bad_samples end to end: a pretraining run over a folder with a truncated image stops with an error naming
the file, or (opted in) finishes, and its results.json counts the skipped sample and names its file. Also the
pretraining data configs resolve their roots from the environment."""

import shutil

import pytest

from attent_vision.data.pretrain.embedded import SyntheticSettings, ensure_synthetic_dataset
from attent_vision.pretraining.trainer import pretrain
from attent_vision.engine.results import read_results
from attent_vision.errors import DataError
from conftest import compose_train


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
