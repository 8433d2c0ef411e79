"""Where the configs live and how they reach the package: one copy in conf/ at the repository root, shipped as the
package ``attent_vision.conf`` by pyproject.toml's package-dir mapping. The wheel itself: test_wheel_install.py."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from conftest import REPO

CONF = REPO / "conf"


def package_name(folder: Path) -> str:
    """The import name a source folder gets in the installed package (conf/ is attent_vision/conf/ there)."""
    relative = folder.relative_to(REPO)
    if relative.parts[0] == "conf":
        relative = Path("attent_vision", *relative.parts)
    return ".".join(relative.parts)


def test_pyproject_lists_every_package_of_the_tree():
    """pyproject.toml lists its packages by hand (find cannot rename conf/): a new subpackage missing there would be
    left out of the wheel, while an editable install still finds it."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"attent_vision.conf": "conf"}
    folders = {path.parent for top in ("attent_vision", "conf", "hydra_plugins") for path in (REPO / top).rglob("*.py")
               if "__pycache__" not in path.parts}
    in_tree = {package_name(folder) for folder in folders} | {"hydra_plugins"}  # the namespace package Hydra scans
    listed = set(setuptools["packages"])
    assert not in_tree - listed, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(in_tree - listed)}"
    assert not listed - in_tree, f"no such package, remove from pyproject.toml: {sorted(listed - in_tree)}"


def test_the_configs_have_one_copy_at_the_top_level():
    assert (CONF / "train" / "train.yaml").is_file() and (CONF / "finetune" / "finetune.yaml").is_file()
    # A folder left at the old place (even one holding only __pycache__) would be imported as a namespace package
    # from a checkout in place of conf/.
    assert not (REPO / "attent_vision" / "conf").exists(), "the configs live in conf/ only (attent_vision.conf)"


def test_in_a_checkout_attent_vision_conf_is_the_top_level_conf():
    """From the repository root the checkout's attent_vision/ is imported from the working directory, and its
    ``conf`` subpackage comes from conf/ (the editable install's finder maps it)."""
    conf = importlib.import_module("attent_vision.conf")
    assert Path(conf.__file__).parent == CONF
    assert conf.TRAIN_CONF_DIR == CONF / "train" and conf.SHARED_CONF_DIR == CONF / "shared"
    assert Path(importlib.import_module("attent_vision.conf.finetune").__file__).parent == CONF / "finetune"


@pytest.mark.parametrize("command", [["train.py"], ["-m", "attent_vision.train"], ["-m", "attent_vision.finetune"],
                                     ["attent-train"]], ids=" ".join)
def test_every_way_to_start_an_entry_point_finds_the_configs(command, tmp_path):
    """``--cfg job`` composes the primary config and a shared group (logger/, added by hydra_plugins/): the script
    of the checkout (run from its root), the modules and the console script (run from an empty folder)."""
    if command == ["attent-train"]:
        script = Path(sys.executable).parent / "attent-train"
        if not script.is_file():
            pytest.skip("attent-train is not installed beside this interpreter (pip install -e .)")
        command = [str(script)]
    else:
        command = [sys.executable, *command]
    cwd = REPO if command[-1] == "train.py" else tmp_path
    out = subprocess.run([*command, "--cfg", "job", "logger=wandb_offline"], cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "mode: offline" in out.stdout  # conf/shared/logger/wandb_offline.yaml
