"""A run folder never lends a run something that is not its own: a checkpoint whose bytes changed after it was
written is caught by its checksums (the run falls back to the previous one, or an explicitly named one is refused
in one line); data that changed between stop and resume is refused naming what changed; ``checkpoint.resume=
archive`` moves everything the earlier run produced (its downstream fine-tunes too); a folder holding another
run's outputs but no checkpoints is refused like one holding checkpoints; and the temporaries of killed atomic
writes are removed at start."""

import os
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from attent_vision.engine.checkpoint import CheckpointManager, atomic_torch_save, verify_checksums
from attent_vision.engine.results import read_results

from conftest import compose_train, make_folder_dataset, run_in_process, write_sample

# A tiny data=folder run: 24 training samples in batches of 8, 3 epochs (1 full + 2 subset epochs: 7 steps).
TINY = ["debug=smoke", "data=folder", "trainer.batch_size=8", "trainer.epochs=3", "trainer.num_vis_samples=0",
        "trainer.progress_bar=false"]
# The embedded fine-tuning data at its smallest and a pico-sized head: a few seconds per task.
TINY_DATA = ["data.synthetic.num_classes=3", "data.synthetic.train_per_class=4", "data.synthetic.val_per_class=2",
             "data.synthetic.semi_per_class=1", "data.synthetic.image_size=32", "data.synthetic.nyu_train=16",
             "data.synthetic.nyu_test=4", "data.synthetic.nyu_width=32", "data.synthetic.nyu_height=24"]
TINY_TASK = ["model.image_size=32", "task.head.feature_dim=8", "trainer.batch_size=8", "trainer.eval_batch_size=8",
             "trainer.progress_bar=false", "trainer.epochs=1", *TINY_DATA]


def train(data: Path, run_dir: Path, *overrides: str):
    return run_in_process(["train.py", *TINY, f"data.root={data}", f"hydra.run.dir={run_dir}", *overrides])


def one_error_line(out) -> str:
    """The refusal: exit 2, no traceback, exactly one error line; returns it."""
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    lines = [line for line in out.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, out.stderr[-3000:]
    return lines[0]


def flip_middle(path: Path, count=64) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + count] = bytes(b ^ 0xFF for b in data[middle:middle + count])
    path.write_bytes(bytes(data))


def weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "pretrained.pth", weights_only=True)["model"]


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """(data, an uninterrupted run, a run stopped after 5 of its 7 steps with a checkpoint at every step)."""
    base = tmp_path_factory.mktemp("integrity")
    data = make_folder_dataset(base / "data", count=24, val_count=4)
    reference = train(data, base / "reference")
    assert reference.returncode == 0, reference.stderr[-3000:]
    stopped = train(data, base / "stopped", "trainer.stop_after_steps=5", "checkpoint.every_steps=1",
                    "checkpoint.keep_last=3")
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    return data, base / "reference", base / "stopped"


def test_flipped_bytes_in_the_newest_checkpoint_fall_back_to_the_previous_one_bit_identically(stopped_run, tmp_path):
    data, reference, stopped = stopped_run
    run_dir = tmp_path / "run"
    shutil.copytree(stopped, run_dir)
    newest = run_dir / "checkpoints" / "step_00000005.pt"
    flip_middle(newest)
    torch.load(newest, weights_only=False)  # torch alone reads it without a word: the damage is silent
    resumed = train(data, run_dir, "checkpoint.every_steps=1", "checkpoint.keep_last=3")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    warning = next(line for line in resumed.stderr.splitlines() if "step_00000005.pt" in line)
    assert "does not match the checksum" in warning and "trying the previous one" in warning
    assert "resuming from step_00000004.pt" in resumed.stderr
    assert read_results(run_dir / "results.json")["status"] == "completed"
    ref_w, res_w = weights(reference), weights(run_dir)
    assert ref_w.keys() == res_w.keys() and all(torch.equal(ref_w[k], res_w[k]) for k in ref_w)


def test_an_explicitly_named_corrupt_checkpoint_is_refused_in_one_line(stopped_run, tmp_path):
    data, _, stopped = stopped_run
    named = tmp_path / "step_00000005.pt"
    shutil.copy(stopped / "checkpoints" / "step_00000005.pt", named)
    assert verify_checksums(named) is True
    flip_middle(named)
    line = one_error_line(train(data, tmp_path / "run", f"checkpoint.resume={named}"))
    assert str(named) in line and "is corrupt" in line and "does not match the checksum" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_checkpoint_written_without_checksums_still_loads_and_says_so(tmp_path, caplog):
    from torch.utils.serialization import config

    path = tmp_path / "step_00000001.pt"
    config.save.compute_crc32 = False
    try:
        torch.save({"format_version": 2, "model": {"w": torch.ones(3)}, "optimizer": {}, "progress": {}}, path)
    finally:
        config.save.compute_crc32 = True
    assert verify_checksums(path) is False
    with caplog.at_level("INFO"):
        state = CheckpointManager(tmp_path).load(path)
    assert torch.equal(state["model"]["w"], torch.ones(3)) and "carries no checksums" in caplog.text
    atomic_torch_save({"w": torch.ones(3)}, tmp_path / "ours.pt")  # ours always carry them
    assert verify_checksums(tmp_path / "ours.pt") is True


def test_changed_training_data_is_refused_before_any_state_is_loaded(tmp_path):
    data = make_folder_dataset(tmp_path / "data", count=24, val_count=4)
    run_dir = tmp_path / "run"
    assert train(data, run_dir, "trainer.stop_after_steps=2").returncode == 0
    checkpoint = run_dir / "checkpoints" / "step_00000002.pt"
    before = checkpoint.read_bytes()
    # An added sample: a new count, which would otherwise fail in the teacher's score table.
    write_sample(data, "train", "img24")
    line = one_error_line(train(data, run_dir))
    assert "sample count 24 -> 25" in line and "3 file(s) added, first: train/" in line and "img24.png" in line
    assert "put the data back" in line and "checkpoint.resume=archive" in line and "hydra.run.dir" in line
    for modality in ("rgb", "depth", "semseg"):
        (data / "train" / modality / "n01" / "img24.png").unlink()
    # A swapped sample: the same name, other bytes.
    swapped = data / "train" / "rgb" / "n01" / "img3.png"
    original = swapped.read_bytes()
    Image.fromarray(torch.randint(0, 255, (40, 40, 3), dtype=torch.uint8).numpy()).save(swapped)
    line = one_error_line(train(data, run_dir))
    assert "1 file(s) changed (content), first: train/rgb/n01/img3.png" in line
    assert checkpoint.read_bytes() == before  # nothing was loaded or written
    # Put back as it was (a small dataset is compared by content: its times may differ): the run resumes.
    swapped.write_bytes(original)
    resumed = train(data, run_dir)
    assert resumed.returncode == 0 and "resumed from" in resumed.stderr, resumed.stderr[-3000:]
    assert read_results(run_dir / "results.json")["status"] == "completed"


def test_archive_moves_the_downstream_fine_tunes_and_the_new_run_fine_tunes_afresh(tmp_path):
    data = make_folder_dataset(tmp_path / "data", count=24, val_count=4)
    run_dir = tmp_path / "run"
    tasks = ["downstream.tasks=[nyuv2_depth]",
             "downstream.overrides=[" + ",".join(f"'{o}'" for o in TINY_TASK) + "]"]
    first = train(data, run_dir, "selection=none", "trainer.epochs=1", *tasks)
    assert first.returncode == 0, first.stderr[-3000:]
    old = read_results(run_dir / "results.json")["downstream"]["nyuv2_depth"]
    assert old["status"] == "completed"
    second = train(data, run_dir, "selection=none", "trainer.epochs=1", "trainer.seed=1",
                   "checkpoint.resume=archive", *tasks)
    assert second.returncode == 0, second.stderr[-3000:]
    (archived,) = (run_dir / "archived").iterdir()
    for name in ("checkpoints", "results.json", "config.yaml", "pretrained.pth", "selections.npz",
                 "downstream/nyuv2_depth/results.json", "downstream/nyuv2_depth/checkpoints", ".hydra/config.yaml"):
        assert (archived / name).exists(), name
    assert read_results(archived / "results.json")["downstream"]["nyuv2_depth"] == old
    assert "trainer.seed=1" not in (archived / ".hydra" / "overrides.yaml").read_text()  # the earlier command
    new = read_results(run_dir / "results.json")["downstream"]["nyuv2_depth"]
    assert new["status"] == "completed" and new["final"] != old["final"]  # a new fine-tune of the new weights
    assert "resumed from" not in second.stderr  # neither the pretraining nor the fine-tune continued the old one


def test_a_folder_with_outputs_but_no_checkpoints_is_refused_unless_the_settings_match_or_it_is_archived(tmp_path):
    data = make_folder_dataset(tmp_path / "data", count=24, val_count=4)
    run_dir = tmp_path / "run"
    assert train(data, run_dir, "trainer.stop_after_steps=1").returncode == 0
    shutil.rmtree(run_dir / "checkpoints")  # outputs (results.json, config.yaml, selections.npz), no checkpoints
    results = (run_dir / "results.json").read_bytes()
    line = one_error_line(train(data, run_dir, "selection=hard"))
    assert f"{run_dir} holds outputs of an earlier run with other settings" in line
    assert "results.json" in line and "selection.strategy: 'soft' -> 'hard'" in line
    assert "checkpoint.resume=archive" in line and "hydra.run.dir" in line
    assert (run_dir / "results.json").read_bytes() == results  # untouched
    # The same settings (an earlier attempt of this very run): allowed.
    again = train(data, run_dir, "trainer.stop_after_steps=1")
    assert again.returncode == 0, again.stderr[-3000:]
    shutil.rmtree(run_dir / "checkpoints")
    # Other settings with archive: the earlier outputs move away first.
    archived = train(data, run_dir, "selection=hard", "checkpoint.resume=archive", "trainer.stop_after_steps=1")
    assert archived.returncode == 0, archived.stderr[-3000:]
    (folder,) = (run_dir / "archived").iterdir()
    assert (folder / "results.json").read_bytes() != results  # the second attempt's, moved
    assert read_results(folder / "results.json")["config"]["selection"]["strategy"] == "soft"
    assert read_results(run_dir / "results.json")["config"]["selection"]["strategy"] == "hard"


def test_temporaries_of_killed_atomic_writes_are_removed_at_start(tmp_path, caplog):
    from attent_vision.pretraining.trainer import Pretrainer

    run_dir = tmp_path / "run"
    stale = [run_dir / "results.json.0123abcd.tmp", run_dir / "pretrained.pth.89abcdef.tmp",
             run_dir / "selections.npz.00ff00ff.tmp", run_dir / "finetuned.pth.a1b2c3d4.tmp",
             run_dir / "downstream" / "downstream.json.deadbeef.tmp",
             run_dir / "checkpoints" / "step_00000002.pt.cafe0123.tmp"]
    kept = [run_dir / "notes.tmp", run_dir / "results.json.tmp"]  # not named like our temporaries
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    with caplog.at_level("WARNING"):
        Pretrainer(compose_train(["debug=smoke"]), run_dir).release_lock()
    assert not any(path.exists() for path in stale) and all(path.exists() for path in kept)
    assert "results.json.0123abcd.tmp" in caplog.text and "downstream/downstream.json.deadbeef.tmp" in caplog.text


def test_the_fingerprint_reads_every_sample_layout_by_content_or_by_time(tmp_path, monkeypatch):
    """Pretraining samples (``paths`` dict), fine-tuning samples (path and label, dicts of paths), relative paths; a
    small dataset compared by content (a copy with new times is the same), a large one by size and time."""
    from attent_vision.data import fingerprint
    from attent_vision.data.fingerprint import fingerprint_samples
    from attent_vision.data.pretrain.folder import Sample

    files = [tmp_path / f"{i}.png" for i in range(4)]
    for i, f in enumerate(files):
        f.write_bytes(b"x" * (i + 1))
    layouts = [[Sample(0, "a", {"rgb": files[0], "depth": files[1]})], [(files[0], 3), (files[1], 1)],
               [{"rgb": files[0], "depth": files[1]}]]
    for samples in layouts:
        fp = fingerprint_samples(samples, tmp_path)
        assert fp.record["files"] == 2 and fp.paths == ["0.png", "1.png"] and fp.change_from(fp.record) is None
    before = fingerprint_samples(layouts[1], tmp_path).record
    os.utime(files[1], ns=(0, 0))  # a copy that did not keep the time: the same content
    assert fingerprint_samples(layouts[1], tmp_path).change_from(before) is None
    files[1].write_bytes(b"yy")  # same size, other bytes
    assert fingerprint_samples(layouts[1], tmp_path).change_from(before) == "1 file(s) changed (content), first: 1.png"
    monkeypatch.setattr(fingerprint, "CONTENT_LIMIT", 0)  # a large dataset: by time, nothing read
    before = fingerprint_samples(layouts[1], tmp_path).record
    os.utime(files[0], ns=(0, 0))
    assert fingerprint_samples(layouts[1], tmp_path).change_from(before) == \
        "1 file(s) changed (size or modification time), first: 0.png"
