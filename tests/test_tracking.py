"""Weights & Biases in offline mode (no network): a smoke pretraining logs a run that can be found on disk with its
metrics, its config and its reconstruction image. (wandb 0.31 removed ``wandb.util.generate_id``, which crashed
every wandb run at start-up.)"""

import pytest

from attent_vision.pretraining.trainer import pretrain
from conftest import compose_train

wandb = pytest.importorskip("wandb")


def test_offline_wandb_run_records_metrics_config_and_images(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = tmp_path / "run"
    results = pretrain(compose_train(["debug=smoke", "logger=wandb_offline", "trainer.epochs=3",
                                      "teaching.total_cycles=1"]), run_dir)
    assert results["status"] == "completed"
    run_id = (run_dir / "wandb_id.txt").read_text().strip()
    folders = list((run_dir / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(folders) == 1, list((run_dir / "wandb").iterdir())
    folder = folders[0]
    # wandb 0.31 keeps config, history and summary in the run's record stream (no Python reader ships with it):
    # the logged keys are stored as UTF-8 strings in that file.
    record = (folder / f"run-{run_id}.wandb").read_bytes()
    for key in (b"train/loss", b"val/loss", b"teach/subset_size", b"time/wall_s", b"selection", b"trainer"):
        assert key in record, key
    assert list((folder / "files" / "media" / "images").glob("reconstructions_*.png"))
