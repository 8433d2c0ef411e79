"""Each extension point takes a new concept through its registry alone: toy extensions outside the package
(tests/toys/: a score function and a selection strategy, a pretraining dataset kind, a downstream task kind with its
dataset), loaded with ``extensions=[...]`` as a user loads theirs (in this process, or in a fresh interpreter that
only has them on PYTHONPATH), run whole pretraining and fine-tuning jobs, and no file of the package names them or
changes; names no registry knows fail in one line that lists the registered ones."""

import hashlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from attent_vision.config import validate_config
from attent_vision.data.pretrain.kinds import PRETRAIN_DATASETS
from attent_vision.data.pretrain.source import SampleSource, check_sample_source
from attent_vision.errors import ConfigError
from attent_vision.finetuning.suite import compose_finetune

from conftest import REPO, TESTS, compose_train, run_cli, run_in_process

PACKAGE = REPO / "attent_vision"

def package_mentions(*names: str) -> list[str]:
    """Files of the package (code and the configs shipped with it) that mention any of ``names``."""
    files = [*PACKAGE.rglob("*.py"), *(REPO / "conf").rglob("*.yaml")]
    return sorted(str(p.relative_to(REPO)) for p in files if any(n in p.read_text() for n in names))


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def test_a_toy_score_and_strategy_select_through_their_registries(tmp_path):
    run_dir = tmp_path / "toy"
    done = run_in_process(["train.py", "debug=smoke", "extensions=[toys.teaching]", "selection=hard",
                           "selection.strategy=toy_easiest", "teaching.score=toy_squared_loss",
                           f"hydra.run.dir={run_dir}"])
    assert done.returncode == 0, done.stderr[-3000:]
    result = results(run_dir)
    assert result["status"] == "completed" and np.isfinite(result["final"]["val_loss"])
    # The narration describes them from their own attributes
    log = done.stderr + done.stdout
    assert "score: toy_squared_loss (the square of the sample's loss (a toy))" in log
    records = result["selections"]
    assert records and all(r["score"] == "toy_squared_loss" for r in records)
    # Each selection took the k lowest-scored samples: the toy strategy decided, on the toy score's values
    with np.load(run_dir / "selections.npz") as arrays:
        for i, record in enumerate(records):
            scores, chosen = arrays[f"scores_{i}"], arrays[f"selection_{i}"]
            assert len(chosen) == record["size"]
            assert np.isfinite(scores).all() and (scores >= 0).all()  # squares of finite losses
            lowest = np.sort(np.argsort(scores, kind="stable")[: record["size"]])
            assert np.array_equal(np.sort(chosen), lowest)
    assert package_mentions("toy_easiest", "toy_squared_loss", "toys.teaching") == []


@pytest.mark.parametrize("override,listed", [("selection.strategy=toy_nowhere", "'rs2'"),
                                             ("teaching.score=toy_nowhere", "'learnability'")])
def test_an_unregistered_name_is_one_line_listing_the_registered_ones(override, listed):
    done = run_in_process(["train.py", "debug=smoke", override])
    assert done.returncode == 2
    line = done.stderr.strip().splitlines()[-1]
    assert "toy_nowhere" in line and "choose one of" in line and listed in line, done.stderr[-2000:]


def test_an_extension_taking_a_registered_name_is_one_line_and_changes_nothing():
    done = run_in_process(["train.py", "debug=smoke", "extensions=[toys.clash]"])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "toys.clash" in line and "'loss'" in line and "already registered" in line, done.stderr[-2000:]
    from attent_vision.teaching.scores import SCORES

    assert SCORES.get("loss").__module__ == "attent_vision.teaching.scores.loss"  # the built-in kept its name


def test_an_extension_that_cannot_be_imported_is_one_line():
    done = run_in_process(["train.py", "debug=smoke", "extensions=[toys.does_not_exist]"])
    assert done.returncode == 2
    line = done.stderr.strip().splitlines()[-1]
    assert "extensions" in line and "toys.does_not_exist" in line and "PYTHONPATH" in line, done.stderr[-2000:]


# ---------------------------------------------------------------------------------- a pretraining dataset kind
TOY = "toys.pretrain_data"  # the extension module (tests/ is on sys.path here; the run gets it on PYTHONPATH)


def test_a_toy_dataset_kind_registered_from_outside_trains_a_smoke_run(tmp_path):
    from toys import pretrain_data as toy

    data, run = tmp_path / "toy_data", tmp_path / "run"
    toy.write_split(data, "train", 32, seed=1)
    toy.write_split(data, "val", 16, seed=2)
    # A new interpreter: only extensions=[...] can register the kind there, as for a user's module on PYTHONPATH.
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    out = run_cli(["train.py", "debug=smoke", f"extensions=[{TOY}]", "data.name=toy_npz", f"data.root={data}",
                   "trainer.epochs=2", "teaching.total_cycles=1", "interval.max_interval=1",
                   "trainer.progress_bar=false", f"hydra.run.dir={run}"], env={"PYTHONPATH": path})
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads((run / "results.json").read_text())
    assert results["status"] == "completed" and results["epochs_completed"] == 2
    assert math.isfinite(results["final"]["val_loss"]) and math.isfinite(results["initial"]["val_loss"])
    assert results["sample_selection"]["num_samples"] == 32  # the toy's training split, not the synthetic data's 96
    assert results["config"]["data"]["name"] == "toy_npz" and results["config"]["extensions"] == [TOY]
    assert "toy_npz: train split, 32 samples" in out.stderr and "toy_npz: val split, 16 samples" in out.stderr
    # Nothing of the package was needed: the kind is defined under tests/ and no package file names it or its module
    # (a digest of the package before and after would say the same, but other work may edit the tree meanwhile).
    kind = PRETRAIN_DATASETS.get("toy_npz")
    assert kind.__module__ == TOY and Path(sys.modules[TOY].__file__).parent == TESTS / "toys"
    named = [p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix in (".py", ".yaml")
             and ("toy_npz" in p.read_text() or TOY in p.read_text())]
    assert named == []


def test_an_unknown_data_name_is_one_line_listing_the_registered_kinds():
    cfg = compose_train(["data.name=tyo_npz"])
    with pytest.raises(ConfigError) as error:
        validate_config(cfg, "pretrain")
    message = str(error.value)
    assert "\n" not in message and "data.name='tyo_npz'" in message
    assert all(repr(name) in message for name in ("folder", "synthetic"))


def test_the_data_root_rule_comes_from_the_kind(tmp_path):
    """The toy reads data.root: leaving it out is the kind's own advice; the synthetic kind refuses one."""
    with pytest.raises(ConfigError, match=r"data.root=None is invalid: set data.root=/folder/with/<split>.npz"):
        validate_config(compose_train([f"extensions=[{TOY}]", "data.name=toy_npz"]), "pretrain")
    assert PRETRAIN_DATASETS.get("toy_npz").takes_root and not PRETRAIN_DATASETS.get("synthetic").takes_root
    with pytest.raises(ConfigError, match=r"data.root=.* is invalid: the embedded synthetic data .* is generated"):
        validate_config(compose_train([f"data.root={tmp_path}"]), "pretrain")


def test_a_split_without_the_sample_source_members_is_one_line_naming_them(tmp_path):
    from toys import pretrain_data as toy

    split = toy.NpzSplit(toy.write_split(tmp_path, "train", 2), ["rgb"], skip_bad_samples=False)
    assert isinstance(split, SampleSource) and check_sample_source(split, "toy_npz") is split
    del split.skipped
    with pytest.raises(TypeError, match=r"^pretraining dataset 'toy_npz': folder\(\) returned a NpzSplit without "
                                        r"\['skipped'\]; implement the SampleSource interface"):
        check_sample_source(split, "toy_npz")


# ------------------------------------------------------------------- a downstream task kind and its dataset
TOY_NAMES = ("mean_brightness", "toy_brightness", "toys.downstream")
TOY_RUN = ["extensions=[toys.downstream]", "data.name=toy_brightness", "task.name=mean_brightness",
           "task.kind=mean_brightness", "task.loss=mse", "debug=smoke", "trainer.epochs=4", "optim.lr=2e-3",
           "optim.warmup_epochs=0", "trainer.progress_bar=false"]


def package_files() -> dict[str, bytes]:
    """{path: SHA-256} of every file of the package and of the configs it ships (compiled caches aside)."""
    files = [p for folder in (PACKAGE, REPO / "conf") for p in sorted(folder.rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts]
    return {str(p.relative_to(REPO)): hashlib.sha256(p.read_bytes()).digest() for p in files}


def test_a_task_kind_and_dataset_from_outside_the_package_fine_tune_and_report_their_metrics(tmp_path):
    before = package_files()
    env = {"PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    proc = run_cli(["finetune.py", *TOY_RUN, f"hydra.run.dir={tmp_path}"], env=env)  # a fresh process: only
    assert proc.returncode == 0, proc.stderr[-3000:]  # extensions= imports the toy module
    r = json.loads((tmp_path / "results.json").read_text())
    assert r["status"] == "completed" and r["optimizer_steps"] == 4 * 4  # 128 images, batch 32, 4 epochs
    assert r["kind"] == "mean_brightness" and r["main_metric"] == "val_mae" and r["setting"]["num_classes"] is None
    assert set(r["best"]) >= {"val_mae", "val_rmse", "epoch"} and set(r["final"]) >= {"val_mae", "val_rmse"}
    assert set(r["baseline"]) == {"val_mae", "val_rmse", "constant"} and 0.3 < r["baseline"]["constant"] < 0.7
    # The kind says lower is better: the best epoch is the one with the lowest error ...
    errors = [h["val_mae"] for h in r["history"]]
    assert r["best"]["epoch"] == 1 + errors.index(min(errors))
    # ... and the fine-tune learned the brightness better than the mean-brightness guess.
    assert r["best"]["val_mae"] < 0.8 * r["baseline"]["val_mae"], (r["best"], r["baseline"])
    # Nothing of the package was needed for it: no file changed, none names the toy pieces.
    after = package_files()
    assert after == before
    named = [path for path in after if any(n.encode() in (REPO / path).read_bytes() for n in TOY_NAMES)]
    assert named == []


@pytest.mark.parametrize("override, key, registered", [
    ("task.kind=normals", "task.kind='normals'", ["cls", "depth", "semseg"]),
    ("data.name=nowhere", "data.name='nowhere'", ["imagenet_s50", "nyuv2", "synthetic"]),
])
def test_an_unknown_kind_or_dataset_is_one_line_listing_the_registered_ones(override, key, registered):
    cfg = compose_finetune("nyuv2_depth", None, [override])
    with pytest.raises(ConfigError) as error:
        validate_config(cfg, "finetune")
    message = str(error.value)
    assert "\n" not in message and key in message and all(f"'{name}'" in message for name in registered), message


def test_an_unknown_dataset_on_the_command_line_fails_in_one_line(tmp_path):
    proc = run_in_process(["finetune.py", "data.name=nowhere", f"hydra.run.dir={tmp_path}"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "data.name='nowhere'" in errors[0] and "'synthetic'" in errors[0], proc.stderr


def test_a_dataset_asked_for_a_kind_it_does_not_serve_says_what_it_serves(tmp_path):
    cfg = compose_finetune("nyuv2_depth", None, ["extensions=[toys.downstream]", "data.name=toy_brightness"])
    validate_config(cfg, "finetune")  # imports the extension (tests/ is on the path): both names are known
    from attent_vision.finetuning.trainer import finetune

    with pytest.raises(ConfigError, match=r"data.name=toy_brightness has no 'depth' labels \(it serves "
                                          r"\['mean_brightness'\]\)"):
        finetune(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "finetuned.pth").exists()
