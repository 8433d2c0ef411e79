"""A multirun fails loudly: a job that did not complete makes the command exit non-zero, with one summary line that
names the job's folder and its error; job folders are named by their overrides (attent_vision/cli/job_folder.py,
attent_vision/cli/multirun_summary.py)."""

import json

from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from attent_vision.cli.job_folder import MAX_FOLDER_CHARS, job_folder
from attent_vision.cli.multirun_summary import OUTCOMES_FOLDER, job_outcome, launched_jobs, summarize
from attent_vision.config import register_configs

from conftest import TRAIN_CONF_DIR, run_in_process

# The cheapest job that really completes: full data (no scoring pass), one epoch of one step, 16 + 8 scenes.
CHEAP = ["debug=smoke", "selection=none", "trainer.epochs=1", "data.synthetic.num_train=16",
         "data.synthetic.num_val=8"]


def summary_line(stderr: str) -> str:
    """The multirun's summary: the last line of its console output."""
    return stderr.strip().splitlines()[-1]


def test_a_failed_job_makes_the_multirun_fail_naming_its_folder_and_error(tmp_path):
    # A first sweep into the folder: three jobs, all refused by validation (cheap), leave three outcome records ...
    out = run_in_process(["train.py", "-m", "debug=smoke", "trainer.seed=-5,-6,-7", f"hydra.sweep.dir={tmp_path}"])
    assert out.returncode == 2, out.stderr[-3000:]  # every failure a user error: the status of a single run's
    assert "3 of 3 jobs failed: " in summary_line(out.stderr)
    assert len(list((tmp_path / OUTCOMES_FOLDER).glob("*.json"))) == 3
    before = set(tmp_path.iterdir())

    # ... which a rerun into the same folder does not count: two jobs, one refused, one completed.
    out = run_in_process(["train.py", "-m", *CHEAP, "trainer.seed=-5,0", f"hydra.sweep.dir={tmp_path}"])
    assert out.returncode == 2, out.stderr[-3000:]
    failed, completed = sorted(set(tmp_path.iterdir()) - before)
    line = summary_line(out.stderr)
    assert line.endswith(f"1 of 2 jobs failed: {failed} (failed: config key trainer.seed=-5 is invalid: must be >= 0)")
    assert "][ERROR] " in line
    # Both folders are named by their overrides (cut to stay short: keys to their last part, a hash at the end).
    assert "seed=-5" in failed.name and completed.name.startswith("1_") and "seed=0-" in completed.name
    assert len(completed.name) <= MAX_FOLDER_CHARS
    assert json.loads((completed / "results.json").read_text())["status"] == "completed"
    assert not (failed / "results.json").exists()
    record = json.loads((tmp_path / OUTCOMES_FOLDER / "0.json").read_text())
    assert (record["job"], record["status"], record["exit_code"], record["folder"]) == (0, "failed", 2, str(failed))
    assert "trainer.seed=-5" in record["overrides"]


def test_a_clean_multirun_says_all_jobs_completed_and_exits_0(tmp_path):
    out = run_in_process(["train.py", "-m", *CHEAP, "trainer.seed=0,1", f"hydra.sweep.dir={tmp_path}"])
    assert out.returncode == 0, out.stderr[-3000:]
    assert summary_line(out.stderr).endswith("] all 2 jobs completed")
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/results.json"))]
    assert [r["status"] for r in results] == ["completed", "completed"]
    assert [r["setting"]["seed"] for r in results] == [0, 1]


def hydra_config(overrides: list[str], command_line: list[str] | None = None):
    """train.yaml composed as Hydra composes a multirun's config; ``command_line`` as its task overrides."""
    register_configs("pretrain")
    with initialize_config_dir(config_dir=str(TRAIN_CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    if command_line is not None:
        with open_dict(cfg):
            cfg.hydra.overrides.task = command_line
    return cfg


def test_the_number_of_jobs_launched_is_computed_as_the_sweeper_expands_them():
    assert launched_jobs(hydra_config(["sweep=table3", "debug=smoke"])) == 10  # from hydra.sweeper.params
    sweep = ["debug=smoke", "trainer.seed=0,1,2", "selection=soft,hard"]
    assert launched_jobs(hydra_config(["debug=smoke"], sweep)) == 6  # from the command line
    assert launched_jobs(hydra_config(["debug=smoke"], ["debug=smoke"])) == 1


def write_outcome(sweep, num, results, error=None):
    folder = sweep / f"{num}_job"
    folder.mkdir(parents=True)
    (sweep / OUTCOMES_FOLDER).mkdir(exist_ok=True)
    record = {"job": num, "folder": str(folder), **job_outcome(results, error), "overrides": []}
    (sweep / OUTCOMES_FOLDER / f"{num}.json").write_text(json.dumps(record))


def test_a_job_without_an_outcome_counts_as_failed(tmp_path):
    write_outcome(tmp_path, 0, {"status": "completed"})
    (tmp_path / "1_killed").mkdir()  # its folder exists; it never recorded how it ended
    line, status = summarize(tmp_path, launched=2)
    assert line == f"1 of 2 jobs failed: {tmp_path / '1_killed'} (failed: no outcome recorded (killed, or crashed " \
                   "before it ended: see its log))"
    assert status == 1


def test_interrupted_and_diverged_jobs_fail_the_multirun_with_their_own_status(tmp_path):
    # Two jobs stopped by SIGTERM (run_entry's results: status interrupted, exit_code 128 + 15): status 143.
    write_outcome(tmp_path / "a", 0, {"status": "completed"})
    write_outcome(tmp_path / "a", 1, {"status": "interrupted", "exit_code": 143})
    write_outcome(tmp_path / "a", 2, {"status": "interrupted", "exit_code": 143})
    line, status = summarize(tmp_path / "a", launched=3)
    assert status == 143 and line.startswith("2 of 3 jobs did not complete: ")
    assert "1_job (interrupted: stopped by signal 15; rerun with the same hydra.sweep.dir to resume)" in line
    # Failures of different kinds: status 1.
    write_outcome(tmp_path / "b", 0, {"status": "diverged", "exit_code": 3, "diverged": {"step": 7, "what": "loss"}})
    write_outcome(tmp_path / "b", 1, {"status": "failed", "exit_code": 2, "error": "bad\nvalue"})
    write_outcome(tmp_path / "b", 2, None, RuntimeError("a bug"))
    line, status = summarize(tmp_path / "b", launched=3)
    assert status == 1 and "0_job (diverged: non-finite loss at step 7)" in line
    assert "1_job (failed: bad value)" in line and "2_job (failed: RuntimeError: a bug)" in line
    # A job stopped at trainer.stop_after_steps (exit 0 as a single run) fails nothing.
    write_outcome(tmp_path / "c", 0, {"status": "completed"})
    write_outcome(tmp_path / "c", 1, {"status": "interrupted", "exit_code": 0})
    line, status = summarize(tmp_path / "c", launched=2)
    assert status == 0 and line.startswith("1 of 2 jobs completed, 1 stopped at trainer.stop_after_steps")


def test_job_folder_replaces_slashes_and_unsafe_characters():
    assert job_folder(0, "selection=soft,trainer.seed=1", "default") == "0_selection=soft,trainer.seed=1"
    assert job_folder(3, "experiment=table3/full", "default") == "3_experiment=table3-full"
    assert job_folder(1, "experiment=[paper_imagenet_s50,table3/full]", "default") == \
        "1_experiment=paper_imagenet_s50,table3-full"
    assert job_folder(2, "+extra.note='a b:c*?'", "default") == "2_+extra.note=a_b_c__"
    assert job_folder(4, "", "default") == "4_default"  # no overrides: the experiment (or task) name


def test_job_folder_cuts_long_names_and_keeps_them_apart():
    base = "data.root=/data/sets/" + "x" * 200 + ",trainer.seed="
    names = {job_folder(5, base + str(seed), "default") for seed in range(3)}
    assert len(names) == 3  # same start: the hash of the full overrides tells them apart
    assert all(len(name) <= MAX_FOLDER_CHARS and name.startswith("5_root=") and "/" not in name for name in names)
    # Shortened keys and paths keep the key a sweep varies, which often sorts last.
    long = "data.root=/data/sets/nyuv2,data.synthetic.num_train=16,data.synthetic.num_val=8,trainer.seed=1"
    name = job_folder(0, long, "default")
    assert name.startswith("0_root=nyuv2,num_train=16,num_val=8,seed=1-") and len(name) <= MAX_FOLDER_CHARS
    assert job_folder(0, long.replace("seed=1", "seed=2"), "default") != name
