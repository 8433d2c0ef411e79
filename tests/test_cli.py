"""The command line as a user meets it: the smoke run, --cfg, one-line errors with non-zero exit, resumption after
a kill, and the Table-3 sweep producing ten results files."""

import json
import signal
import subprocess
import sys

import pytest
import torch
from PIL import Image

from conftest import REPO, make_folder_dataset, run_cli, run_in_process


def test_cfg_job_prints_the_config():
    out = run_cli(["train.py", "--cfg", "job"])
    assert out.returncode == 0 and "selection:" in out.stdout and "strategy: soft" in out.stdout


def test_smoke_run_completes_and_learns(tmp_path):
    out = run_in_process(["train.py", "debug=smoke", f"hydra.run.dir={tmp_path}"])
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "completed" and results["final"]["val_loss"] < results["initial"]["val_loss"]
    assert "plan (soft selection" in out.stderr and "done: val_loss" in out.stderr
    assert (tmp_path / "train.log").is_file() and (tmp_path / ".hydra" / "config.yaml").is_file()


def short_error(out, ours=True) -> str:
    """The failure as the user sees it: non-zero exit, no traceback, and (for our checks) exactly one error line."""
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    if not ours:  # Hydra's composition errors: a few lines ending with its HYDRA_FULL_ERROR hint
        assert len(out.stderr.strip().splitlines()) <= 8, out.stderr
        return out.stderr
    errors = [line for line in out.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "error: " in errors[0], out.stderr[-3000:]
    return errors[0]


def test_config_typo_is_one_short_error():
    err = short_error(run_cli(["train.py", "trainer.epohcs=3"]), ours=False)
    assert "epohcs" in err and "did you mean trainer.epochs" in err


def test_synthetic_data_with_a_root_is_refused_without_touching_it(tmp_path):
    """data.root is for folder datasets: with the generated default it would silently become a cache folder."""
    nowhere = tmp_path / "nonexistent"
    out = run_in_process(["train.py", "debug=smoke", f"data.root={nowhere}", f"hydra.run.dir={tmp_path / 'run'}"])
    assert out.returncode == 2 and "data.cache_dir" in out.stderr and "data=folder" in out.stderr
    assert not nowhere.exists()


def test_bad_value_is_one_line_naming_the_key(tmp_path):
    out = run_cli(["train.py", "selection.temperature=0", f"hydra.run.dir={tmp_path}"])
    err = short_error(out)
    assert out.returncode == 2 and "selection.temperature" in err


@pytest.fixture(scope="module")
def checkpointed_run(tmp_path_factory):
    """A run folder with a checkpoint, to check that failing invocations never touch it."""
    run_dir = tmp_path_factory.mktemp("checkpointed") / "run"
    out = run_in_process(["train.py", "debug=smoke", "trainer.stop_after_steps=3", f"hydra.run.dir={run_dir}"])
    assert out.returncode == 0, out.stderr[-2000:]
    ckpt = next((run_dir / "checkpoints").glob("step_*.pt"))
    return run_dir, ckpt, ckpt.read_bytes()


@pytest.mark.parametrize("problem", ["no_root", "no_modality", "truncated", "sizes", "typo"])
def test_bad_input_fails_in_one_line_and_keeps_checkpoints(tmp_path, checkpointed_run, problem):
    run_dir, ckpt, before = checkpointed_run
    data = make_folder_dataset(tmp_path / "data")
    args = ["train.py", "debug=smoke", "data=folder", f"data.root={data}", f"hydra.run.dir={run_dir}",
            "checkpoint.resume=never", "trainer.batch_size=4"]  # 4 samples: a larger batch is refused first
    expect = None
    if problem == "no_root":
        args[3] = f"data.root={tmp_path / 'nowhere'}"
        expect = "nowhere"
    elif problem == "no_modality":
        import shutil

        shutil.rmtree(data / "train" / "depth")
        expect = "train/depth"
    elif problem == "truncated":
        bad = data / "train" / "rgb" / "n01" / "img2.png"
        bad.write_bytes(bad.read_bytes()[:60])
        expect = "img2.png"
    elif problem == "sizes":
        Image.fromarray(torch.zeros(20, 20, dtype=torch.uint8).numpy()).save(
            data / "train" / "semseg" / "n01" / "img1.png")
        expect = "img1.png"
    else:
        args.append("data.skip_bad_sampels=true")
        expect = "skip_bad_sampels"
    out = run_in_process(args)
    err = short_error(out, ours=problem != "typo")
    if problem != "typo":  # the folder's checkpoints refuse the fresh run before any data is read
        assert "checkpoint.resume=archive" in err
        args[4] = f"hydra.run.dir={tmp_path / 'fresh'}"
        err = short_error(run_in_process(args))
    assert expect in err
    assert ckpt.read_bytes() == before and sorted((run_dir / "checkpoints").iterdir()) == [ckpt]


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    args = [sys.executable, "train.py", "debug=smoke", "trainer.epochs=9", "checkpoint.every_steps=2",
            f"hydra.run.dir={tmp_path}"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # blocks until the run logs; checkpoints at steps 2, 4 and 6 exist after epoch 1
        if "epoch 1/9 done" in line:
            break
    proc.send_signal(signal.SIGKILL)  # no chance to clean up: only what was atomically saved survives
    proc.wait()
    saved = sorted((tmp_path / "checkpoints").glob("step_*.pt"))
    assert saved, "no checkpoint was written before the kill"
    last_step = int(saved[-1].stem.split("_")[1])
    out = run_in_process(["train.py", "debug=smoke", "trainer.epochs=9", "checkpoint.every_steps=2",
                          f"hydra.run.dir={tmp_path}"])
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"resumed from {saved[-1]}" in out.stderr and f"(global step {last_step})" in out.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "completed"
    assert results["optimizer_steps"] == results["planned_optimizer_steps"]
    assert not list(tmp_path.rglob("*.tmp"))  # no half-written checkpoint left behind


def test_table3_sweep_writes_ten_results(table3_sweep):
    results = [json.loads(p.read_text()) for p in sorted(table3_sweep.glob("*/results.json"))]
    assert len(results) == 10 and all(r["status"] == "completed" for r in results)
    rows = {(r["setting"]["ratio"], r["setting"]["interval"], r["setting"]["selection"]) for r in results}
    assert len(rows) == 10
    by_selection = {}
    for r in results:
        by_selection.setdefault(r["setting"]["selection"], []).append(r)
    assert all(r["scoring_passes"] == 0 and r["time_s"]["scoring"] == 0
               for r in by_selection["none"] + by_selection["random"])  # no pass, and no time charged to scoring
    assert all(r["scoring_passes"] > 0 for r in by_selection["soft"] + by_selection["hard"])
    full = by_selection["none"][0]
    assert all(r["samples_seen"] < full["samples_seen"] for r in results if r is not full)
