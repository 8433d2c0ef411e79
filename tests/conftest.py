"""Shared fixtures. Tests never touch ~/.cache: the synthetic-data cache lives in a per-session temp folder."""

import inspect
import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TRAIN_CONF_DIR = REPO / "attent_vision" / "conf" / "train"
FINETUNE_CONF_DIR = REPO / "attent_vision" / "conf" / "finetune"
SHARED_CONF_DIR = REPO / "attent_vision" / "conf" / "shared"


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Point $ATTENT_VISION_CACHE at a session temp folder (also inherited by subprocesses)."""
    cache = tmp_path_factory.mktemp("attent_cache")
    old = os.environ.get("ATTENT_VISION_CACHE")
    os.environ["ATTENT_VISION_CACHE"] = str(cache)
    os.environ.setdefault("WANDB_MODE", "disabled")
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield cache
    if old is None:
        os.environ.pop("ATTENT_VISION_CACHE", None)
    else:
        os.environ["ATTENT_VISION_CACHE"] = old


@pytest.fixture(scope="session")
def smoke_data_root(isolated_cache):
    """The smoke-sized synthetic pretraining dataset (generated once per session)."""
    from attent_vision.data.pretrain.embedded import SyntheticSettings, ensure_synthetic_dataset

    return ensure_synthetic_dataset(SyntheticSettings(num_train=96, num_val=32, image_size=40))


def compose_train(overrides: list[str]):
    """Compose attent_vision/conf/train/train.yaml with overrides through Hydra's compose API (no run folder, no logging set-up)."""
    from hydra import compose, initialize_config_dir

    from attent_vision.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(TRAIN_CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=False)


def run_cli(args: list[str], cwd=REPO, timeout=None, env=None):
    """Run an entry point (e.g. ['train.py', 'debug=smoke']) in a subprocess; returns CompletedProcess. No wall-clock
    limit of its own: on a busy machine work takes longer, and pytest-timeout (pyproject) bounds each test."""
    import subprocess

    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=full_env)


@pytest.fixture(scope="session")
def table3_sweep(tmp_path_factory):
    """The ten Table-3 rows with the smoke settings, run once per session as a real Hydra multirun."""
    sweep_dir = tmp_path_factory.mktemp("table3") / "multirun"
    out = run_cli(["train.py", "sweep=table3", "debug=smoke", f"hydra.sweep.dir={sweep_dir}"])
    assert out.returncode == 0, out.stderr[-3000:]
    return sweep_dir


# Fixtures that start subprocesses (entry points, torchrun, multiruns).
SUBPROCESS_FIXTURES = {"table3_sweep", "checkpointed_run", "single_and_two_ranks"}


def pytest_collection_modifyitems(items):
    """Mark every test that starts a Python subprocess (an entry point, torchrun, a multirun) ``slow``. CI runs
    them all; ``-m "not slow"`` gives a quick local pass. Marked from the source, so new tests are covered."""
    for item in items:
        function = getattr(item, "function", None)
        source = inspect.getsource(function) if function else ""
        if "run_cli(" in source or "sys.executable" in source or SUBPROCESS_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
