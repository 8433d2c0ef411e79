"""Weights & Biases in offline mode (no network): a smoke pretraining and a smoke fine-tune each log a run that is
read back from disk (tests/wandb_offline.py decodes the run's record file with wandb's own protobuf classes):
the whole config, the metrics at the right steps (the validation loss at initialisation as step 0, epochs counted
from 1), the reconstruction image, and with ``logger.upload_artifacts`` the final weights and results.json as an
artifact. Runs of a Hydra multirun share the sweep folder's name as their group and are named after experiment and
overrides. (wandb 0.31 removed ``wandb.util.generate_id``, which once crashed every wandb run at start-up.)"""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict
from wandb_offline import read_offline_run

from attent_vision.config import register_configs, validate_config
from attent_vision.engine.tracking import MAX_NAME_CHARS, Tracker, run_name
from attent_vision.errors import ConfigError
from attent_vision.finetuning.suite import compose_finetune
from attent_vision.finetuning.trainer import finetune
from attent_vision.pretraining.trainer import pretrain

from conftest import TRAIN_CONF_DIR, compose_train

wandb = pytest.importorskip("wandb")


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """wandb silent, with its caches, artifact staging and settings in the test's folder (never the home folder);
    WANDB_MODE unset (conftest disables wandb for every other test)."""
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")  # no crash reports to wandb's servers
    monkeypatch.delenv("WANDB_MODE", raising=False)
    for var in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))


def assert_artifact(run, run_dir: Path, weights: str, results: dict) -> None:
    """One ``model`` artifact named after the weights and the run, holding the weights and results.json."""
    assert len(run.artifacts) == 1, run.artifacts
    artifact = run.artifacts[0]
    assert (artifact["name"], artifact["type"]) == (f"{Path(weights).stem}-{run.run_id}", "model")
    assert {name: Path(path).resolve() for name, path in artifact["files"].items()} == {
        weights: (run_dir / weights).resolve(), "results.json": (run_dir / "results.json").resolve()}
    assert artifact["metadata"]["status"] == "completed"
    assert artifact["metadata"]["final"] == pytest.approx(results["final"])


def test_offline_pretraining_run_reads_back_from_initialisation_to_artifact(tmp_path, offline_wandb):
    run_dir = tmp_path / "run"
    cfg = compose_train(["debug=smoke", "logger=wandb_offline", "logger.upload_artifacts=true", "trainer.epochs=3",
                         "teaching.total_cycles=1"])
    results = pretrain(cfg, run_dir)
    assert results["status"] == "completed"
    run = read_offline_run(run_dir)
    # The whole resolved config; outside a Hydra app the run is named after its experiment, with no group.
    assert run.config["trainer"]["epochs"] == 3 and run.config["selection"]["strategy"] == cfg.selection.strategy
    assert (run.name, run.group) == ("default", "")
    # Validation: at initialisation (step 0, the value results.json keeps as "initial"), then after each epoch.
    val = run.column("val/loss")
    assert val[0] == (0, pytest.approx(results["initial"]["val_loss"]))
    assert val[-1] == (results["optimizer_steps"], pytest.approx(results["final"]["val_loss"]))
    assert len(val) == 1 + results["epochs"]
    assert run.column("val/rgb")[0][0] == 0  # the per-task losses too
    # Training metrics with 1-based epochs (epoch 1 is the first, as in the log lines), teaching metrics.
    epochs = [epoch for _, epoch in run.column("train/epoch")]
    assert (epochs[0], epochs[-1]) == (1, results["epochs"]) and epochs == sorted(epochs)
    assert run.column("train/loss")[0][0] > 0 and run.column("teach/subset_size")
    # The final reconstruction figure, stored in the run's media folder.
    [(step, path)] = run.column("reconstructions/path")
    assert step == results["optimizer_steps"] and (run.folder / "files" / path).is_file()
    assert_artifact(run, run_dir, "pretrained.pth", results)


def test_offline_finetune_run_reads_back_metrics_config_and_artifact(tmp_path, offline_wandb):
    run_dir = tmp_path / "finetune"
    cfg = compose_finetune("imagenet_s50_cls", None, ["debug=smoke", "logger=wandb_offline",
                                                      "logger.upload_artifacts=true"])
    results = finetune(cfg, run_dir)
    assert results["status"] == "completed"
    run = read_offline_run(run_dir)
    assert run.config["task"]["name"] == "imagenet_s50_cls" and run.config["trainer"]["epochs"] == 2
    assert (run.name, run.group) == ("finetune", "")
    top1 = run.column("val/top1")
    assert top1[-1] == (results["optimizer_steps"], pytest.approx(results["final"]["val_top1"]))
    # Fine-tuning has no evaluation at initialisation (its first evaluation also fits the trivial baseline on the
    # first epoch's targets), so nothing is logged at step 0.
    assert min(step for step, _ in top1) > 0
    epochs = [epoch for _, epoch in run.column("train/epoch")]
    assert (epochs[0], epochs[-1]) == (1, 2)
    assert run.column("train/loss")
    assert_artifact(run, run_dir, "finetuned.pth", results)


@pytest.fixture
def multirun_job(tmp_path):
    """This process as Hydra sets it up for a job of ``train.py -m experiment=table3/full trainer.seed=0,1
    debug=smoke logger=wandb_offline`` (the seed-1 job): Hydra's own composed config, with the multirun mode, sweep
    folder and job folder that Hydra's launcher fills in. Yields (config, job folder)."""
    register_configs()
    overrides = ["experiment=table3/full", "trainer.seed=1", "debug=smoke", "logger=wandb_offline"]
    with initialize_config_dir(config_dir=str(TRAIN_CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    job_dir = tmp_path / "multirun" / "2026-01-02_03-04-05" / "1_t3_full"
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.sweep.dir = str(job_dir.parent)
        cfg.hydra.runtime.output_dir = str(job_dir)
    HydraConfig.instance().set_config(cfg)
    try:
        yield cfg, job_dir
    finally:
        HydraConfig.instance().cfg = None


def test_multirun_jobs_are_grouped_by_sweep_folder_and_named_by_overrides(multirun_job, tmp_path, offline_wandb):
    cfg, job_dir = multirun_job
    config = {"experiment_name": cfg.experiment_name}
    inner, explicit_dir = job_dir / "downstream" / "nyuv2_seg", tmp_path / "explicit"
    for folder in (inner, explicit_dir):  # the trainer creates its run folder before the tracker starts
        folder.mkdir(parents=True)
    Tracker(cfg.logger, job_dir, config, active=True).finish()
    run = read_offline_run(job_dir)
    # The experiment names the run, then the job's overrides, sorted (less the experiment's and the logger's).
    assert (run.name, run.group) == ("t3_full debug=smoke,trainer.seed=1", "2026-01-02_03-04-05")
    assert run.artifacts == []  # no artifact unless asked for (and only for a completed run)
    # A run inside the job's folder (a downstream fine-tune) keeps the sweep's group; the overrides are not its own.
    Tracker(cfg.logger, inner, {"experiment_name": "finetune"}, active=True).finish()
    downstream = read_offline_run(inner)
    assert (downstream.name, downstream.group) == ("finetune", "2026-01-02_03-04-05")
    # logger.name and logger.group, when set, win.
    explicit = OmegaConf.merge(cfg.logger, {"name": "mine", "group": "ablation"})
    Tracker(explicit, explicit_dir, config, active=True).finish()
    assert (read_offline_run(explicit_dir).name, read_offline_run(explicit_dir).group) == ("mine", "ablation")


def test_artifacts_without_wandb_are_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"logger.upload_artifacts=True .*add logger=wandb or logger=wandb_offline"):
        validate_config(compose_train(["logger.upload_artifacts=true"]), "pretrain")
    validate_config(compose_train(["logger=wandb_offline", "logger.upload_artifacts=true"]), "pretrain")


def test_run_names_are_shortened_overrides():
    overrides = ["trainer.seed=1", "sweep=table3", "experiment=table3/full", "+data.root=/data/sets/nyuv2/",
                 "debug=smoke", "logger=wandb", "logger.project=mine"]
    assert run_name("t3_full", overrides) == "t3_full data.root=sets/nyuv2,debug=smoke,trainer.seed=1"
    assert run_name("default", []) == "default"
    long = run_name("default", [f"model.key_{i}=value" for i in range(30)])
    assert len(long) == MAX_NAME_CHARS and long.endswith("...")
