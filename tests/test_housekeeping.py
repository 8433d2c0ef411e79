"""Housekeeping a user on a shared machine notices: outputs readable like any file the umask allows, one line naming
the extra to install when an optional dependency is missing, no change to the warning filters on import, and smoke
runs kept apart from real ones."""

import importlib
import os
import stat
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from attent_vision.cli import export_timm
from attent_vision.data.cache import write_once
from attent_vision.pretraining.trainer import pretrain

from conftest import REPO, compose_train, run_cli


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class umask:
    """The process umask set to ``value`` inside the block (child processes inherit it)."""

    def __init__(self, value: int):
        self.value = value

    def __enter__(self):
        self.old = os.umask(self.value)

    def __exit__(self, *exc):
        os.umask(self.old)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600)], ids=["umask022", "umask077"])
def test_results_checkpoints_weights_and_exports_get_the_mode_the_umask_gives(tmp_path, mask, expected):
    run_dir, export = tmp_path / "run", tmp_path / "encoder.safetensors"
    cfg = compose_train(["debug=smoke", "trainer.epochs=2", "teaching.total_cycles=1", "interval.max_interval=1"])
    with umask(mask):
        assert pretrain(cfg, run_dir)["status"] == "completed"
        assert export_timm.main([str(run_dir), "--out", str(export)]) == 0  # what attent-export-timm runs
    written = [run_dir / "results.json", run_dir / "pretrained.pth", export, *(run_dir / "checkpoints").glob("*.pt")]
    assert len(written) >= 4
    assert {p.name: oct(mode(p)) for p in written} == {p.name: oct(expected) for p in written}


def test_dataset_cache_folders_get_the_mode_the_umask_gives(tmp_path):
    def write(folder: Path) -> None:
        (folder / "done").write_text("ok")

    with umask(0o022):
        root = write_once(tmp_path / "synthetic-abc", write, marker="done")
    assert oct(mode(root)) == oct(0o755)  # not mkdtemp's 0700: others on a shared cache can read it


def fresh_import(monkeypatch, name: str):
    """Import module ``name`` anew (as a process without it loaded would), putting the old one back afterwards."""
    old = importlib.import_module(name)
    parent, _, attr = name.rpartition(".")
    monkeypatch.setattr(sys.modules[parent], attr, old)
    monkeypatch.delitem(sys.modules, name)
    return importlib.import_module(name)


@pytest.mark.parametrize("missing, package", [("h5py", "h5py"), ("scipy.io", "scipy")])
def test_prepare_nyuv2_without_its_extra_names_the_install(tmp_path, monkeypatch, capsys, missing, package):
    monkeypatch.setitem(sys.modules, missing, None)  # import of it fails, as when it is not installed
    prepare = fresh_import(monkeypatch, "attent_vision.data.downstream.prepare_nyuv2")  # imports without it
    argv = [f"--{flag}={tmp_path / name}" for flag, name in
            (("mat", "nyu_depth_v2_labeled.mat"), ("splits", "splits.mat"), ("mapping", "classMapping40.mat"),
             ("out", "out"))]
    assert prepare.main(argv + ["--no-progress"]) == 2
    assert capsys.readouterr().err == (f"error: attent-prepare-nyuv2 needs {package}, which is not installed: "
                                       f"pip install 'attent-vision[nyuv2]' (or pip install {package})\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("entry, command", [("attent_vision.train", "attent-train"),
                                            ("attent_vision.finetune", "attent-finetune")])
def test_slurm_launcher_without_the_plugin_names_the_install(monkeypatch, capsys, entry, command):
    main = importlib.import_module(entry).main  # the console script's function
    monkeypatch.setitem(sys.modules, "hydra_plugins.hydra_submitit_launcher", None)
    monkeypatch.setattr(sys, "argv", [command, "hydra/launcher=slurm_1gpu", "--cfg", "job"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 2
    assert capsys.readouterr().err == (f"error: {command} hydra/launcher=slurm_1gpu needs hydra-submitit-launcher, "
                                       "which is not installed: pip install 'attent-vision[slurm]' (or pip install "
                                       "hydra-submitit-launcher)\n")


def test_launchers_that_need_no_plugin_pass_the_check():
    from attent_vision.extras import launcher_of, needs_submitit, require_launcher_plugin

    assert launcher_of(["a=1", "hydra/launcher=basic", "hydra/launcher=local_2cpu"]) == "local_2cpu"
    assert all(needs_submitit(name) for name in ("slurm_6gpu", "slurm_local", "local_2cpu", "submitit_local"))
    assert not needs_submitit("basic") and not needs_submitit("joblib")
    require_launcher_plugin(["hydra/launcher=slurm_1gpu"], "attent-train")  # installed here: no error


def test_image_io_import_leaves_warning_filters_alone_and_decodes_when_warnings_are_errors(tmp_path, monkeypatch):
    Image.fromarray(np.full((5, 7, 3), 200, np.uint8)).save(tmp_path / "a.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a user's strict setting: every warning raises
        before = list(warnings.filters)
        image_io = fresh_import(monkeypatch, "attent_vision.data.image_io")
        assert warnings.filters == before
        image = image_io.decode_image_file(tmp_path / "a.png", rgb=True)  # torchvision's deprecation stays quiet
        assert warnings.filters == before
    assert tuple(image.shape) == (3, 5, 7) and int(image[0, 0, 0]) == 200


def test_finetune_smoke_run_lands_under_outputs_smoke(tmp_path):
    with umask(0o022):
        proc = run_cli([str(REPO / "finetune.py"), "debug=smoke", "trainer.epochs=1"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [run_dir] = list((tmp_path / "outputs" / "smoke" / "finetune").glob("*/*"))  # <task>/<time stamp>
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["smoke"]  # nothing beside real runs
    assert oct(mode(run_dir / "results.json")) == oct(mode(run_dir / "finetuned.pth")) == oct(0o644)
