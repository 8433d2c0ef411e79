"""learnability's reference model (issues 22, 23): a holdout carved from the training split, disjoint from validation
and from the samples it scores; trained as a run of the shared loop core in <run>/reference/ (check windows as its
epochs, until its loss plateaus or at most reference_max_steps steps), resumed there when its training was stopped;
cached under the data cache and reused by a run with the same settings; and its settings checked with one-line
errors."""

import logging
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from attent_vision.config.pretrain import validate_train_config
from attent_vision.engine.checkpoint import CheckpointManager
from attent_vision.engine.distributed import DistEnv
from attent_vision.engine.results import read_results
from attent_vision.engine.stage import StoppedInHook
from attent_vision.errors import ConfigError, DataError
from attent_vision.pretraining.builders import build_loss, build_pretrain_model, build_pretrain_views, reference_holdout
from attent_vision.pretraining.reference import PlateauRule, load_or_train_reference_model
from attent_vision.pretraining.reference_stage import ReferenceTrainer
from attent_vision.pretraining.sample_record import read_selections
from attent_vision.pretraining.trainer import pretrain

from conftest import compose_train

LEARNABILITY = ["debug=smoke", "teaching.score=learnability"]  # smoke data: 96 training and 32 validation scenes


def views_for(overrides: list[str], root: Path, cache_dir: Path | None = None):
    """(cfg, views, loss) of a smoke-sized learnability run on the session's smoke data ``root``; ``cache_dir``
    is where reference models are cached (the data stays where it is)."""
    cache = [f"data.cache_dir={cache_dir}"] if cache_dir else []
    cfg = compose_train([*LEARNABILITY, *cache, *overrides])
    model = build_pretrain_model(cfg)
    return cfg, build_pretrain_views(cfg, model, root), build_loss(cfg, model)


def reference(overrides: list[str], root: Path, run_dir: Path, cache_dir: Path | None = None):
    """(model, samples trained, info) of load_or_train_reference_model for these settings, in one process, trained
    (when not cached) in the run folder ``run_dir``."""
    cfg, views, _ = views_for(overrides, root, cache_dir)
    return load_or_train_reference_model(cfg, views["reference"], run_dir, DistEnv())


def files_of(folder, indices) -> set[Path]:
    return {path for i in indices for path in folder.samples[i].paths.values()}


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_holdout_comes_from_the_training_split_and_is_disjoint_from_validation_and_the_scored_samples(
        smoke_data_root):
    cfg, views, _ = views_for([], smoke_data_root)
    train, score, ref, val = views["train"], views["score"], views["reference"], views["val"]
    kept, holdout = train.subset, ref.subset
    assert len(holdout) == round(0.1 * 96) == len(ref) and len(kept) == 86 == len(train)
    assert score.subset == kept  # what is scored is what is trained: never the holdout
    assert not set(kept) & set(holdout) and sorted(kept + holdout) == list(range(96))
    assert ref.folder is train.folder and ref.augment
    assert not files_of(ref.folder, holdout) & files_of(val.folder, range(len(val)))  # validation is elsewhere
    assert not files_of(ref.folder, holdout) & files_of(train.folder, kept)
    # Item i of the reference view is holdout sample i of the folder (and keeps its view index).
    assert ref.folder_index(3) == holdout[3] and ref[(3, 0, 1.0)]["index"] == 3
    # The same holdout for the same seed and size (every run of a sweep), another for another seed.
    assert reference_holdout(cfg, 96) == (kept, holdout)
    assert reference_holdout(compose_train([*LEARNABILITY, "trainer.seed=1"]), 96)[1] != holdout
    # The validation split is no longer needed.
    _, no_val, _ = views_for(["data.val_split=null"], smoke_data_root)
    assert no_val["val"] is None and no_val["reference"].subset == holdout


@pytest.mark.parametrize("overrides", [["teaching.score=loss"], ["selection=random"], ["selection=none"]],
                         ids=["loss", "random", "none"])
def test_runs_that_never_ask_for_reference_losses_keep_the_whole_training_split(smoke_data_root, overrides):
    _, views, _ = views_for(overrides, smoke_data_root)
    assert views["train"].subset is None and len(views["train"]) == 96 and "reference" not in views


def test_the_plateau_rule_stops_after_patience_windows_without_a_one_percent_gain():
    rule = PlateauRule(patience=2)
    # 10 -> 9 is a gain; 8.95 beats 9 by less than 1%; 8.9 by 1.1% (a gain again); then two windows without.
    assert [rule.plateaued(x) for x in (10.0, 9.0, 8.95, 8.9, 8.85, float("nan"))] == [False] * 5 + [True]
    assert rule.best == 8.9


def test_the_reference_trains_through_the_loop_core_to_a_plateau_and_a_second_run_reuses_it_from_the_cache(
        smoke_data_root, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="attent_vision")
    # A high learning rate: the loss falls fast, then flattens (40 steps here: windows 7 and 8 differ by < 1%).
    plateau = ["teaching.reference_check_every=5", "teaching.reference_patience=1", "teaching.reference_max_steps=300",
               "optim.blr=2e-2"]
    _, _, untrained = reference(["teaching.reference_max_steps=1", "teaching.reference_cache=false"], smoke_data_root,
                                tmp_path / "untrained")

    run_dir = tmp_path / "run" / "reference"
    model, trained, info = reference(plateau, smoke_data_root, run_dir, tmp_path)
    assert info["stopped"] == "plateau" and 2 * 5 <= info["steps"] < 300 and info["steps"] % 5 == 0
    assert trained == info["trained_samples"] == info["steps"] * 10  # batch min(16, 10 holdout samples)
    assert info["final_loss"] < 0.5 * untrained["final_loss"]  # it learned before it stopped (7.2 -> 2.7 here)
    assert not model.training
    # A run of the core in its own folder: windows as epochs, stopped early by the plateau, a final checkpoint.
    record = read_results(run_dir / "results.json")
    assert record["stage"] == "reference" and record["status"] == "completed"
    assert record["reference_model"] == info and record["optimizer_steps"] == info["steps"]
    assert record["epochs"] == 60 and record["epochs_completed"] == info["steps"] // 5 == len(record["history"])
    assert record["history"][-1]["stopped_early"] and record["final"]["train_loss"] == round(info["final_loss"], 6)
    assert (run_dir / "checkpoints" / f"step_{info['steps']:08d}.pt").is_file()
    cached = list((tmp_path / "reference_models").glob("*.pt"))
    assert len(cached) == 1 and len(cached[0].stem) == 16

    caplog.clear()
    elsewhere = tmp_path / "elsewhere" / "reference"
    again, trained_again, info_again = reference(plateau, smoke_data_root, elsewhere, tmp_path)
    # Reused: nothing trained now (no run folder made), and the same description as when it was trained (a run's
    # selection records must not depend on whether another run of its sweep trained the model first)
    assert trained_again == 0 and info_again == info and not elsewhere.exists()
    assert same_weights(model, again) and not again.training
    assert f"reference model: reused {cached[0]}" in caplog.text

    # Without the cache, its own folder's early stop is where it resumes: nothing more to train, the same model.
    resumed, trained_resumed, info_resumed = reference([*plateau, "teaching.reference_cache=false"], smoke_data_root,
                                                       run_dir)
    assert trained_resumed == 0 and info_resumed == info and same_weights(model, resumed)

    # Other reference settings are another model: trained, and cached beside the first.
    _, trained_other, info_other = reference([*plateau[:2], "teaching.reference_max_steps=2"], smoke_data_root,
                                             tmp_path / "other", tmp_path)
    assert trained_other == 20 and info_other["stopped"] == "max_steps"
    assert len(list((tmp_path / "reference_models").glob("*.pt"))) == 2


def test_a_reference_stopped_mid_window_resumes_from_its_checkpoint_to_the_same_model(smoke_data_root, tmp_path):
    """Windows of 3 steps, 8 steps in all (3 + 3 + 2); stopped after 4, inside the second window."""
    steps = ["teaching.reference_max_steps=8", "teaching.reference_check_every=3", "teaching.reference_cache=false"]
    whole, trained_whole, info = reference(steps, smoke_data_root, tmp_path / "whole")
    assert trained_whole == 80 and info["stopped"] == "max_steps" and info["steps"] == 8

    with pytest.raises(StoppedInHook):
        reference([*steps, "trainer.stop_after_steps=4"], smoke_data_root, tmp_path / "stopped")
    stopped = read_results(tmp_path / "stopped" / "results.json")
    assert stopped["status"] == "interrupted" and stopped["optimizer_steps"] == 4
    assert [p.name for p in (tmp_path / "stopped" / "checkpoints").iterdir()] == ["step_00000004.pt"]
    resumed, trained_now, info_resumed = reference(steps, smoke_data_root, tmp_path / "stopped")
    assert trained_now == 40 and info_resumed == info  # the last 4 steps; the whole run's description
    assert same_weights(whole, resumed)


@pytest.mark.parametrize("damage,reason", [("flipped", "does not match the checksum"),
                                           ("truncated", "not a torch zip archive"),
                                           ("foreign", "written for other settings")])
def test_a_damaged_cache_file_is_ignored_with_a_warning_and_trained_again(smoke_data_root, tmp_path, caplog, damage,
                                                                          reason):
    short = ["teaching.reference_max_steps=3"]
    first, _, info = reference(short, smoke_data_root, tmp_path / "first", tmp_path)
    (path,) = (tmp_path / "reference_models").glob("*.pt")
    data = bytearray(path.read_bytes())
    if damage == "flipped":  # bytes inside a tensor record: only the records' CRC-32s tell
        middle = len(data) // 2
        data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
        path.write_bytes(bytes(data))
    elif damage == "truncated":
        path.write_bytes(bytes(data[: len(data) // 3]))
    else:  # a readable file written for other settings (a copy under the wrong name)
        torch.save({"key": "0" * 64, "state_dict": {}, "info": {}}, path)
    caplog.set_level(logging.INFO, logger="attent_vision")
    second, trained, info_second = reference(short, smoke_data_root, tmp_path / "second", tmp_path)
    assert "is unusable" in caplog.text and str(path) in caplog.text and reason in caplog.text
    assert trained == 30 and info_second == info and same_weights(first, second)
    _, trained_third, _ = reference(short, smoke_data_root, tmp_path / "third", tmp_path)  # written anew
    assert trained_third == 0


def test_max_steps_stops_the_reference_and_a_diverging_one_fails_with_one_line(smoke_data_root, tmp_path):
    _, trained, info = reference(["teaching.reference_max_steps=3", "teaching.reference_cache=false"], smoke_data_root,
                                 tmp_path / "short")
    assert info["stopped"] == "max_steps" and info["steps"] == 3 and trained == 30
    # The core's non-finite guard stops it (trainer.max_nonfinite_steps=0): its run says diverged, the caller fails.
    with pytest.raises(DataError) as e:
        reference(["teaching.reference_max_steps=5", "optim.lr=1e9", "teaching.reference_cache=false"], smoke_data_root,
                  tmp_path / "diverged")
    assert "not finite" in str(e.value) and "optim.blr" in str(e.value) and len(str(e.value).splitlines()) == 1
    assert read_results(tmp_path / "diverged" / "results.json")["status"] == "diverged"


@pytest.mark.parametrize("override,key", [
    ("teaching.reference_holdout=0", "teaching.reference_holdout"),
    ("teaching.reference_holdout=1", "teaching.reference_holdout"),
    ("teaching.reference_holdout=-0.2", "teaching.reference_holdout"),
    ("teaching.reference_max_steps=0", "teaching.reference_max_steps"),
    ("teaching.reference_check_every=0", "teaching.reference_check_every"),
    ("teaching.reference_patience=0", "teaching.reference_patience"),
    ("teaching.reference_draws=0", "teaching.reference_draws"),
])
def test_bad_reference_settings_fail_with_one_line_naming_the_key(override, key):
    with pytest.raises(ConfigError) as e:
        validate_train_config(compose_train([*LEARNABILITY, override]))
    assert key in str(e.value) and len(str(e.value).splitlines()) == 1


@pytest.mark.parametrize("fraction", ["0.001", "0.999"], ids=["no holdout", "no training data"])
def test_a_holdout_that_leaves_either_side_empty_fails_with_one_line(smoke_data_root, fraction):
    cfg = compose_train([*LEARNABILITY, f"teaching.reference_holdout={fraction}"])
    validate_train_config(cfg)  # a valid fraction; only the data's size makes it empty
    with pytest.raises(ConfigError) as e:
        build_pretrain_views(cfg, build_pretrain_model(cfg), smoke_data_root)
    message = str(e.value)
    assert "teaching.reference_holdout" in message and "96 training samples" in message
    assert len(message.splitlines()) == 1


# A pretraining run of one full epoch (6 steps) and one subset epoch, whose selection trains a reference model of 9
# steps (windows of 3). trainer.stop_after_steps=7 counts the steps of whichever run trains: the pretraining run's
# first 6 do not reach it, the reference's 7th does.
STOPPED_INSIDE = ["trainer.epochs=2", "teaching.total_cycles=1", "teaching.reference_max_steps=9",
                  "teaching.reference_check_every=3", "teaching.reference_cache=false",
                  "teaching.repeatability_samples=0"]


def without_timings(selections: list[dict]) -> list[dict]:
    return [{k: v for k, v in s.items() if not k.startswith("scoring_s") and k != "reference_s"} for s in selections]


def test_a_pretraining_run_stopped_while_its_reference_trains_resumes_it_to_the_same_run(tmp_path):
    whole_dir, run_dir = tmp_path / "whole", tmp_path / "run"
    whole = pretrain(compose_train([*LEARNABILITY, *STOPPED_INSIDE]), whole_dir)
    assert whole["status"] == "completed" and whole["selections"][0]["reference_model"]["steps"] == 9

    stopped = pretrain(compose_train([*LEARNABILITY, *STOPPED_INSIDE, "trainer.stop_after_steps=7"]), run_dir)
    # Stopped inside the selection: no checkpoint of that half-made selection, only the epoch's before it.
    assert stopped["status"] == "interrupted" and stopped["exit_code"] == 0 and stopped["optimizer_steps"] == 6
    assert stopped["selections"] == []
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step_00000006.pt"]
    inner = read_results(run_dir / "reference" / "results.json")
    assert inner["status"] == "interrupted" and inner["optimizer_steps"] == 7

    resumed = pretrain(compose_train([*LEARNABILITY, *STOPPED_INSIDE]), run_dir)
    assert resumed["status"] == "completed"
    assert read_results(run_dir / "reference" / "results.json")["status"] == "completed"
    # The same reference model (its run resumed at step 7), hence the same scores, selection and learner.
    references = [CheckpointManager.load(d / "reference" / "checkpoints" / "step_00000009.pt")["model"]
                  for d in (whole_dir, run_dir)]
    assert all(torch.equal(references[0][k], references[1][k]) for k in references[0])
    assert without_timings(resumed["selections"]) == without_timings(whole["selections"])
    assert resumed["compute"]["reference_trained_samples"] == whole["compute"]["reference_trained_samples"] == 90
    chosen, chosen_whole = read_selections(run_dir / "selections.npz"), read_selections(whole_dir / "selections.npz")
    assert all(np.array_equal(chosen[k], chosen_whole[k], equal_nan=True) for k in chosen_whole)
    assert resumed["final"]["val_loss"] == whole["final"]["val_loss"]
    weights = [torch.load(d / "pretrained.pth", weights_only=True)["model"] for d in (whole_dir, run_dir)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_signal_while_the_reference_trains_stops_both_runs_after_the_reference_saves(tmp_path, monkeypatch):
    """SIGTERM (preemption) during the reference's third step: the pretraining run's handler takes it, the reference
    saves its checkpoint and stops, and the pretraining run ends interrupted with 128 + 15, its handlers restored."""
    real_step_loss, steps = ReferenceTrainer.step_loss, []

    def step_loss_then_signal(self, batch, shape):  # the real step; the signal arrives during the third
        steps.append(shape)
        if len(steps) == 3:
            signal.raise_signal(signal.SIGTERM)
        return real_step_loss(self, batch, shape)

    monkeypatch.setattr(ReferenceTrainer, "step_loss", step_loss_then_signal)
    handler = signal.getsignal(signal.SIGTERM)
    stopped = pretrain(compose_train([*LEARNABILITY, *STOPPED_INSIDE]), tmp_path)
    assert stopped["status"] == "interrupted" and stopped["exit_code"] == 128 + signal.SIGTERM
    assert stopped["optimizer_steps"] == 6 and stopped["selections"] == []
    inner = read_results(tmp_path / "reference" / "results.json")
    assert inner["status"] == "interrupted" and inner["optimizer_steps"] == 3 and inner["exit_code"] == 143
    assert [p.name for p in (tmp_path / "reference" / "checkpoints").iterdir()] == ["step_00000003.pt"]
    assert signal.getsignal(signal.SIGTERM) is handler  # nothing of either run's signal handling is left
