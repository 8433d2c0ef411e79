"""Shared fixtures. Tests never touch ~/.cache: the synthetic-data cache lives in a per-session temp folder."""

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
TRAIN_CONF_DIR = REPO / "conf" / "train"  # conf/ ships in the package as attent_vision.conf (pyproject.toml)
FINETUNE_CONF_DIR = REPO / "conf" / "finetune"
SHARED_CONF_DIR = REPO / "conf" / "shared"


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Point $ATTENT_VISION_CACHE at a session temp folder (also inherited by subprocesses)."""
    cache = tmp_path_factory.mktemp("attent_cache")
    old = os.environ.get("ATTENT_VISION_CACHE")
    os.environ["ATTENT_VISION_CACHE"] = str(cache)
    os.environ.setdefault("WANDB_MODE", "disabled")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Several workers share the CPUs: one thread each, in this process and in the entry points and torchrun
        # ranks it starts (two spinning OpenMP threads per process on a shared 2-core machine cost ten-fold).
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)
    else:
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


@pytest.fixture(scope="session")
def tiny_labellers(tmp_path_factory):
    """name -> folder of the tiny randomly initialised labelling models (dpt, depth_anything, mask2former; built once
    per session from configs, no download) that attent-pseudolabel loads as depth.model= / semseg.model=."""
    from toys.tiny_labellers import save_tiny_labellers

    return save_tiny_labellers(tmp_path_factory.mktemp("tiny_labellers"))


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A real single-node SLURM cluster for the session (munged, slurmctld and slurmd from a generated slurm.conf:
    scripts/single_node_slurm.py), stopped at its end; its ``env`` points SLURM's commands at it. Skipped, saying
    why, where SLURM is not installed (bash scripts/install_slurm.sh installs it) or this user cannot run slurmd's
    jobs."""
    slurm = load_script(REPO / "scripts" / "single_node_slurm.py")
    missing = slurm.missing_programs()
    if missing:
        pytest.skip(f"SLURM is not installed here ({', '.join(missing)} not found): bash scripts/install_slurm.sh "
                    "installs it (Debian or Ubuntu, as root)")
    if os.geteuid() != 0:
        pytest.skip("the slurm tests start slurmd, which runs its jobs as root: run them as root")
    cluster = slurm.LocalSlurm(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    yield cluster
    cluster.stop()


def weights(run_dir: Path) -> dict:
    """The final model weights of a pretraining run folder."""
    return torch.load(run_dir / "pretrained.pth", weights_only=True)["model"]


def close_weights(a: dict, b: dict) -> bool:
    """Equal up to floating-point reduction order, measured over the whole model. (Attention key biases have a
    true gradient of zero, so their updates are Adam-normalised rounding noise and differ visibly between
    reduction orders; every other tensor agrees to ~1e-7.)"""
    diff = sum(float((a[k] - b[k]).double().norm() ** 2) for k in a) ** 0.5
    return diff / sum(float(a[k].double().norm() ** 2) for k in a) ** 0.5 < 1e-4


def load_benchmark(name: str):
    """benchmarks/<name>.py as a module (benchmarks/ is not a package: its scripts import each other by name)."""
    return load_script(REPO / "benchmarks" / f"{name}.py")


def load_script(path: Path):
    """A script of benchmarks/ or scripts/ (folders that are not packages) as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_folder_dataset(root: Path, size=40, count=4, val_count=None):
    """A tiny pretraining folder dataset: ``count`` random rgb/depth/semseg samples of one class per split
    (``val_count`` in val, default ``count``)."""
    for split, n in (("train", count), ("val", count if val_count is None else val_count)):
        for i in range(n):
            write_sample(root, split, f"img{i}", size)
    return root


def write_sample(root: Path, split: str, stem: str, size=40) -> None:
    for modality, array in (("rgb", torch.randint(0, 255, (size, size, 3), dtype=torch.uint8).numpy()),
                            ("depth", (torch.rand(size, size) * 60000).to(torch.int32).numpy().astype("uint16")),
                            ("semseg", torch.randint(0, 133, (size, size), dtype=torch.uint8).numpy())):
        folder = root / split / modality / "n01"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(folder / f"{stem}.png")


def compose_train(overrides: list[str]):
    """Compose conf/train/train.yaml with overrides through Hydra's compose API (no run folder, no logging set-up)."""
    from hydra import compose, initialize_config_dir

    from attent_vision.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(TRAIN_CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=False)


def run_cli(args: list[str], cwd=REPO, timeout=None, env=None):
    """Run an entry point (e.g. ['train.py', 'debug=smoke']) in a subprocess; returns CompletedProcess. No wall-clock
    limit of its own: on a busy machine work takes longer, and pytest-timeout (pyproject) bounds each test."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=full_env)


ENTRY_POINTS = {"train.py": "attent_vision.train", "finetune.py": "attent_vision.finetune",
                "attent-pseudolabel": "attent_vision.pseudolabel"}


def run_in_process(args: list[str]) -> subprocess.CompletedProcess:
    """``run_cli(args)`` for ``train.py`` / ``finetune.py``, run in this process: the same ``main()``, argv, exit
    status and console output, without the ~4 s a new interpreter spends importing torch, torchvision and timm. For
    tests of what a command does; signals, first imports, torchrun and installed scripts need run_cli. Hydra's
    global state, sys.argv and the logging set-up are restored afterwards."""
    import contextlib
    import importlib
    import io
    import logging

    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    script, *rest = args
    root = logging.getLogger()
    saved = sys.argv, root.handlers[:], root.level
    out, err = io.StringIO(), io.StringIO()
    GlobalHydra.instance().clear()
    sys.argv = [script, *rest]
    code = 0
    try:
        # Hydra's console handler is made during the run (stream: ext://sys.stderr), so it writes into ``err``.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            importlib.import_module(ENTRY_POINTS[script]).main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if isinstance(e.code, str):
            err.write(e.code + "\n")  # what the interpreter prints for sys.exit("message")
    finally:
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None  # outside an app again (HydraConfig.initialized() is False)
        for handler in root.handlers:
            if handler not in saved[1]:
                handler.close()  # the run's log file
        sys.argv, root.handlers[:], _ = saved
        root.setLevel(saved[2])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def table3_sweep(tmp_path_factory):
    """The ten Table-3 rows with the smoke settings, run once per session as a real Hydra multirun."""
    sweep_dir = tmp_path_factory.mktemp("table3") / "multirun"
    # Half the smoke data: ten jobs in one process, each still selecting from 48 scenes.
    out = run_cli(["train.py", "sweep=table3", "debug=smoke", "data.synthetic.num_train=48",
                   "data.synthetic.num_val=16", f"hydra.sweep.dir={sweep_dir}"])
    assert out.returncode == 0, out.stderr[-3000:]
    return sweep_dir


# Fixtures that start subprocesses (entry points, torchrun, multiruns).
SUBPROCESS_FIXTURES = {"table3_sweep", "checkpointed_run", "two_ranks", "slurm_cluster"}


# Shared fixtures too cheap to be worth keeping their tests on one worker.
CHEAP_SHARED_FIXTURES = {"smoke_data_root"}


def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pyproject): one worker per CPU this process may use, at most 4 (each holds its own torch and
    its own copies of the session fixtures); none on a single CPU."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 0 if cpus < 2 else min(cpus, 4)


def shared_fixtures(item) -> set[str]:
    """The module- and session-scoped fixtures of this test folder that ``item`` uses (directly or through other
    fixtures), autouse and cheap ones left out."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return set()
    ours = {name for name, defs in info.name2fixturedefs.items()
            if defs and Path(inspect.getfile(defs[-1].func)).resolve().parent == TESTS}
    return {name for name in ours
            if info.name2fixturedefs[name][-1].scope in ("module", "session") and name not in CHEAP_SHARED_FIXTURES
            and not getattr(info.name2fixturedefs[name][-1], "_autouse", False)}


def group_by_shared_fixtures(items) -> None:
    """Under pytest-xdist (``--dist loadgroup``), tests that share an expensive module or session fixture (a
    pretraining run, the Table-3 sweep, the two-rank launch) run on one worker, so the fixture runs once; all other
    tests are dealt to workers one by one. Groups are the connected components of "uses the same fixture"."""
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    uses = {item.nodeid: sorted(shared_fixtures(item)) for item in items}
    for names in uses.values():
        for other in names[1:]:
            parent[root(other)] = root(names[0])
    for item in items:
        if uses[item.nodeid]:
            item.add_marker(pytest.mark.xdist_group(root(uses[item.nodeid][0])))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(items):
    """Mark every test that starts a Python subprocess (an entry point, torchrun, a multirun) ``slow``. CI runs
    them all; ``-m "not slow"`` gives a quick local pass. Marked from the source, so new tests are covered."""
    for item in items:
        function = getattr(item, "function", None)
        source = inspect.getsource(function) if function else ""
        if "run_cli(" in source or "sys.executable" in source or SUBPROCESS_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
    group_by_shared_fixtures(items)
