"""The package as a user installs it: build the wheel, install it into a fresh virtualenv (reusing this
interpreter's torch and other dependencies, no network), and train from an empty directory with the console
script. Fails if the configs, the entry points or the Hydra plugin for the shared config groups are left out of the
wheel."""

import json
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

# What the wheel is built from: everything pyproject.toml packages (conf/ becomes attent_vision/conf/ in the
# wheel), nothing of the checkout's run folders.
SOURCES = ["pyproject.toml", "README.md", "attent_vision", "conf", "hydra_plugins"]


def run(args, cwd, env=None):
    out = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, env=env)
    assert out.returncode == 0, f"{' '.join(map(str, args))} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A virtualenv with the freshly built wheel installed; returns its bin/ folder."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                            if (REPO / name).is_dir() else {}))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", root / "dist",
         source], cwd=root)
    wheel = next((root / "dist").glob("attent_vision-*.whl"))
    run([sys.executable, "-m", "venv", root / "venv"], cwd=root)
    bin_dir = root / "venv" / "bin"
    # The dependencies (torch, hydra, ...) come from this interpreter's site-packages, whatever kind of environment
    # that is (`--system-site-packages` would give the *base* interpreter's instead when this is itself a venv).
    # Plain path lines do not run the .pth hooks found there, so the checkout's editable install stays invisible.
    venv_site = Path(run([bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         cwd=root).stdout.strip())
    (venv_site / "outer_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run([bin_dir / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--force-reinstall", wheel],
        cwd=root)
    return bin_dir


def test_the_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    out = run([installed / "python", "-c", "import attent_vision; print(attent_vision.__file__)"], cwd=tmp_path)
    assert str(installed.parent) in out.stdout, out.stdout


def test_attent_train_smoke_runs_from_an_empty_directory(installed, tmp_path):
    work = tmp_path / "empty"
    work.mkdir()
    run([installed / "attent-train", "debug=smoke", "trainer.epochs=3", "teaching.total_cycles=1"], cwd=work)
    [run_dir] = list((work / "outputs" / "smoke").glob("default/*"))  # debug=smoke runs land under outputs/smoke/
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "completed"
    assert results["final"]["val_loss"] < results["initial"]["val_loss"]
    assert (run_dir / "pretrained.pth").is_file()


def test_each_entry_point_help_lists_only_its_own_groups(installed, tmp_path):
    train_help = run([installed / "attent-train", "--help"], cwd=tmp_path).stdout
    finetune_help = run([installed / "python", "-m", "attent_vision.finetune", "--help"], cwd=tmp_path).stdout
    groups = {}
    for name, text in (("train", train_help), ("finetune", finetune_help)):
        listing = text.split("== Configuration groups ==")[1]
        groups[name] = {line.split(":")[0] for line in listing.splitlines() if ": " in line and " " not in
                        line.split(":")[0]}
    assert {"selection", "ratio", "interval", "sweep", "model", "logger", "debug"} <= groups["train"]
    assert {"task", "benchmark", "finetune_sweep", "logger", "debug"} <= groups["finetune"]
    assert not groups["train"] & {"task", "benchmark", "finetune_sweep", "task_data"}
    assert not groups["finetune"] & {"selection", "ratio", "interval", "sweep", "experiment"}
    assert "attent-train debug=smoke" in train_help and "attent-finetune debug=smoke" in finetune_help
