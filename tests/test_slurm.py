"""Through a real SLURM scheduler (the session's single-node cluster, scripts/single_node_slurm.py) with the
project's own launcher preset, hydra/launcher=slurm_local: a sweep's jobs go through sbatch and srun, a requeued
job (scontrol requeue; the time limit's signal) resumes to the same bits, a two-task job trains and selects as one
process, a failed job is named in the sweep's summary, and a cluster that cannot take the sweep is one line.

Every training job has the same settings (:data:`RUN`), so the sweep's ``selection=soft`` job is the uninterrupted
reference of the others. Jobs take one CPU each (the preset), so two run at once on a 2-core machine.
"""

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from attent_vision.report import build_report

from conftest import REPO, close_weights, load_script, run_cli, weights

pytestmark = pytest.mark.slurm
single_node_slurm = load_script(REPO / "scripts" / "single_node_slurm.py")

# 12 epochs of 6 steps or fewer (~70 steps, a few seconds): a job requeued at its first logged step is still
# training when SIGKILL follows SIGTERM (KillWait, 1 s here).
SETTINGS = ["debug=smoke", "trainer.epochs=12"]
RUN = [*SETTINGS, "selection=soft"]
TRAINING = "epoch 1/12 [full] step 2/"  # the job's first logged step
LAUNCHER = "hydra/launcher=slurm_local"
WAIT_S = 300  # for a job to reach a point of its log: far beyond what any of these jobs takes


def start_sweep(cluster, sweep_dir: Path, *overrides: str) -> subprocess.Popen:
    """``train.py -m <overrides>`` through the cluster, in the background; its console output goes to
    ``<sweep_dir>.log`` (a pipe could fill with submitit's polling lines and stall it)."""
    console = open(f"{sweep_dir}.log", "w")
    proc = subprocess.Popen([sys.executable, "train.py", "-m", *overrides, LAUNCHER, f"hydra.sweep.dir={sweep_dir}"],
                            cwd=REPO, env={**os.environ, **cluster.env}, stdout=console, stderr=subprocess.STDOUT)
    console.close()
    return proc


def finish(proc: subprocess.Popen, sweep_dir: Path) -> tuple[int, str]:
    """(exit status, console output) of a sweep started by :func:`start_sweep`."""
    code = proc.wait()
    return code, Path(f"{sweep_dir}.log").read_text()


def run_sweep(cluster, sweep_dir: Path, *overrides: str) -> tuple[int, str]:
    return finish(start_sweep(cluster, sweep_dir, *overrides), sweep_dir)


def summary_line(console: str) -> str:
    return console.strip().splitlines()[-1]


def job_log(sweep_dir: Path, proc: subprocess.Popen, text: str) -> tuple[str, Path]:
    """(SLURM job id, the job's log) of a one-job sweep, once the log holds ``text``."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and proc.poll() is None:
        logs = list(sweep_dir.glob(".submitit/*/*_0_log.err"))
        if logs and text in logs[0].read_text(errors="replace"):
            return logs[0].parent.name, logs[0]
        time.sleep(0.2)
    _, console = finish(proc, sweep_dir)
    raise AssertionError(f"the job's log never said {text!r}; the sweep's output ends:\n{console[-3000:]}")


def job_folder(sweep_dir: Path, num: int = 0) -> Path:
    (folder,) = sweep_dir.glob(f"{num}_*/")
    return folder


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def same_bits(a: Path, b: Path) -> bool:
    """Whether two run folders hold the same final weights, bit for bit."""
    return all(torch.equal(x, y) for x, y in zip(weights(a).values(), weights(b).values(), strict=True))


def untimed(history: list[dict]) -> list[dict]:
    """A run's per-epoch history without what the clock measured."""
    return [{k: v for k, v in epoch.items() if k not in ("wall_s", "time_s") and not k.endswith("_per_s")}
            for epoch in history]


def selections(folder: Path) -> dict:
    with np.load(folder / "selections.npz") as saved:
        return {key: saved[key] for key in saved.files}


@pytest.fixture(scope="module")
def slurm_sweep(slurm_cluster, tmp_path_factory):
    """The two-job sweep through SLURM: (exit status, console output, sweep folder)."""
    sweep_dir = tmp_path_factory.mktemp("slurm_sweep") / "multirun"
    return (*run_sweep(slurm_cluster, sweep_dir, *SETTINGS, "selection=soft,none"), sweep_dir)


def reference(slurm_sweep) -> Path:
    """The uninterrupted one-process run of :data:`RUN` (selection=soft), through SLURM."""
    return job_folder(slurm_sweep[2], 0)


def test_a_sweep_runs_its_jobs_through_sbatch_with_the_results_and_report_of_the_local_launcher(slurm_sweep,
                                                                                                   tmp_path):
    code, console, sweep_dir = slurm_sweep
    assert code == 0, console[-3000:]
    assert summary_line(console).endswith("] all 2 jobs completed")
    submitted = (next(sweep_dir.glob(".submitit/*/*_submission.sh"))).read_text()
    assert "#SBATCH --partition=local" in submitted and "#SBATCH --signal=USR2@" in submitted
    # The same sweep with Hydra's own launcher, in one process (one thread, as a one-CPU SLURM job has).
    local = tmp_path / "multirun"
    out = run_cli(["train.py", "-m", *SETTINGS, "selection=soft,none", f"hydra.sweep.dir={local}"],
                  env={"OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert [p.name for p in sorted(local.glob("[0-9]_*"))] == [p.name for p in sorted(sweep_dir.glob("[0-9]_*"))]
    for num in (0, 1):
        by_slurm, by_hydra = job_folder(sweep_dir, num), job_folder(local, num)
        assert results(by_slurm)["status"] == "completed"
        assert untimed(results(by_slurm)["history"]) == untimed(results(by_hydra)["history"])
        assert same_bits(by_slurm, by_hydra)
    timing = ("wall_s", "train_s", "scoring_s", "data_wait_s", "eval_s", "rel_wall", "runs")

    def rows(folder):
        built = build_report([folder], tmp_path / f"report_{folder.parent.name}")
        return [{k: v for k, v in row.items() if k not in timing and not k.endswith("_std")} for row in built["rows"]]

    assert rows(sweep_dir) == rows(local) and [r["selection"] for r in rows(sweep_dir)] == ["none", "soft"]


@pytest.fixture(scope="module")
def stopped_jobs(slurm_cluster, tmp_path_factory):
    """Three one-job sweeps of :data:`RUN`, side by side (one CPU each, two at a time), each stopped at its first
    logged step: name -> (exit status, console output, run folder, the job's log).

    - "requeued": by ``scontrol requeue`` (SIGCONT + SIGTERM, SIGKILL after KillWait, then pending again);
    - "time_limit": by slurmctld as the job nears its time limit, with the preset's ``--signal=USR2@<delay>``, on
      which our checkpoint comes first, then submitit's handler requeues the job. slurmctld checks time limits every
      30 s, so the job is held still (SIGSTOP, no CPU) while it waits, with a limit that makes its signal due at
      once; SLURM sends SIGCONT with the signal;
    - "cancelled": by ``scancel`` (SIGTERM, SIGKILL after KillWait): over, without a result.
    """
    root = tmp_path_factory.mktemp("stopped")

    def requeued(job):
        slurm_cluster.client("scontrol", "requeue", job)

    def time_limit(job):
        slurm_cluster.client("scancel", "--signal=STOP", job)
        slurm_cluster.client("scontrol", "update", f"JobId={job}", "TimeLimit=2")  # USR2 due at 2 min - 110 s: now
        job_log(root / "time_limit", sweeps["time_limit"], f"received signal {int(signal.SIGUSR2)}: saving a "
                "checkpoint")
        slurm_cluster.client("scontrol", "update", f"JobId={job}", "TimeLimit=60")  # the requeued job: unsignalled

    def cancelled(job):
        slurm_cluster.client("scancel", job)

    def drive(name, stop):
        job, log = job_log(root / name, sweeps[name], TRAINING)
        stop(job)
        return (*finish(sweeps[name], root / name), job_folder(root / name), log)

    actions = {"requeued": requeued, "time_limit": time_limit, "cancelled": cancelled}
    extra = {"time_limit": ["hydra.launcher.signal_delay_s=110"]}
    sweeps = {name: start_sweep(slurm_cluster, root / name, *RUN, *extra.get(name, [])) for name in actions}
    with ThreadPoolExecutor(len(actions)) as pool:  # each job is stopped as soon as it reaches its first steps
        driven = {name: pool.submit(drive, name, stop) for name, stop in actions.items()}
        return {name: future.result() for name, future in driven.items()}


@pytest.mark.parametrize("name, signum", [("requeued", signal.SIGTERM), ("time_limit", signal.SIGUSR2)])
def test_a_requeued_job_resumes_from_its_checkpoint_and_ends_with_the_same_bits(stopped_jobs, slurm_sweep, name,
                                                                                signum):
    code, console, folder, log = stopped_jobs[name]
    assert code == 0 and summary_line(console).endswith("] the job completed"), console[-3000:]
    text = log.read_text()
    assert f"received signal {int(signum)}: saving a checkpoint after the current step" in text
    assert f"checkpoint saved; handing signal {int(signum)} to the launcher" in text  # submitit's handler
    if signum == signal.SIGUSR2:
        assert "Requeued job" in text  # by submitit, after our checkpoint
    assert "resumed from" in text and results(folder)["status"] == "completed"
    assert same_bits(folder, reference(slurm_sweep))


def test_a_cancelled_job_is_waited_for_and_named_by_the_sweeps_summary(stopped_jobs):
    code, console, folder, log = stopped_jobs["cancelled"]
    assert code == 1 and "Traceback" not in console, console[-3000:]
    job = log.parent.name
    assert f"job 0 (SLURM job {job}) ended without a result (it left the queue without one): cancelled, killed " \
           f"(time, memory) or its node failed; its log: {log}" in console
    assert summary_line(console).endswith(f"1 of 1 jobs failed: {folder} (failed: no outcome recorded (killed, or "
                                          "crashed before it ended: see its log))")
    assert "received signal 15: saving a checkpoint" in log.read_text()  # and SIGKILL came before it finished


@pytest.fixture(scope="module")
def two_task_sweep(slurm_cluster, tmp_path_factory):
    """Two jobs of two SLURM tasks each (DDP over gloo, ranks from SLURM's variables): seed 0 (the reference's
    settings, micro-batch 8 on each rank = the global batch 16), and seed -5, which its validation refuses."""
    sweep_dir = tmp_path_factory.mktemp("two_tasks") / "multirun"
    return (*run_sweep(slurm_cluster, sweep_dir, *RUN, "trainer.micro_batch_size=8",
                       "trainer.seed=0,-5", "hydra.launcher.tasks_per_node=2"), sweep_dir)


def test_a_two_task_job_trains_and_selects_as_one_process(two_task_sweep, slurm_sweep):
    _, console, sweep_dir = two_task_sweep
    ddp, single = results(job_folder(sweep_dir, 0)), results(reference(slurm_sweep))
    assert ddp["status"] == "completed" and ddp["setting"]["world_size"] == 2, console[-3000:]
    chosen, expected = selections(job_folder(sweep_dir, 0)), selections(reference(slurm_sweep))
    assert chosen.keys() == expected.keys() and any(key.startswith("selection_") for key in chosen)
    for key in chosen:  # the subsets chosen, how often each sample was trained; the scores up to reduction order
        if key.startswith("scores_"):
            assert np.allclose(chosen[key], expected[key], rtol=1e-4, atol=1e-6), key
        else:
            assert np.array_equal(chosen[key], expected[key]), key
    for a, b in zip(single["history"], ddp["history"]):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
    assert close_weights(weights(job_folder(sweep_dir, 0)), weights(reference(slurm_sweep)))


def test_a_failed_job_is_named_by_the_sweeps_summary_and_exit_status(two_task_sweep):
    code, console, sweep_dir = two_task_sweep
    assert code == 2, console[-3000:]  # the failed job's own status: a user error
    failed = job_folder(sweep_dir, 1)
    assert summary_line(console).endswith(f"1 of 2 jobs failed: {failed} (failed: config key trainer.seed=-5 is "
                                          "invalid: must be >= 0)")


def one_line_refusal(out: subprocess.CompletedProcess) -> str:
    """The single line of a sweep refused before anything was submitted."""
    assert out.returncode == 2, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
    return lines[0]


def test_a_partition_the_cluster_does_not_have_is_one_line(slurm_cluster, tmp_path):
    out = run_cli(["train.py", "-m", "debug=smoke", LAUNCHER, "hydra.launcher.partition=gpu",
                   f"hydra.sweep.dir={tmp_path}"], env=slurm_cluster.env)
    assert one_line_refusal(out) == ("error: hydra.launcher.partition=gpu: this cluster has no partition gpu (it "
                                     "has: local); set hydra.launcher.partition to one of them (sinfo lists them)")
    assert not list(tmp_path.glob(".submitit/*"))


def test_a_request_sbatch_refuses_is_one_line_after_sbatchs_own(slurm_cluster, tmp_path):
    out = run_cli(["train.py", "-m", "debug=smoke", LAUNCHER, "hydra.launcher.cpus_per_task=64",
                   f"hydra.sweep.dir={tmp_path}"], env=slurm_cluster.env)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert out.stderr.strip().splitlines()[-1] == (
        "error: SLURM refused the sweep's jobs: Batch job submission failed: More processors requested than "
        "permitted. Check the hydra.launcher settings (partition, account, cpus_per_task, gpus_per_node, mem_gb, "
        "timeout_min) against what your cluster allows (sinfo, scontrol show partition)")


def test_a_cluster_that_is_down_is_one_line(slurm_cluster, tmp_path):
    # The same cluster, but no one listens on its controller's port (and clients give up at once, not after 9 s).
    down = tmp_path / "slurm.conf"
    down.write_text("MessageTimeout=1\n" + "\n".join(
        f"SlurmctldPort={single_node_slurm.free_port()}" if line.startswith("SlurmctldPort=") else line
        for line in slurm_cluster.conf.read_text().splitlines()))
    out = run_cli(["train.py", "-m", "debug=smoke", LAUNCHER, f"hydra.sweep.dir={tmp_path / 'multirun'}"],
                  env={"SLURM_CONF": str(down)})
    line = one_line_refusal(out)
    assert line.startswith("error: the SLURM cluster does not answer (")
    assert "Unable to contact slurm controller" in line
    assert line.endswith("`sinfo` must answer on this machine before a sweep is submitted")


def test_a_slurm_conf_that_is_not_a_file_is_one_line_at_once(slurm_cluster, tmp_path):
    out = run_cli(["train.py", "-m", "debug=smoke", LAUNCHER, f"hydra.sweep.dir={tmp_path}"],
                  env={"SLURM_CONF": str(tmp_path / "slurm.conf")})  # sinfo would retry for a minute
    assert one_line_refusal(out) == (f"error: SLURM_CONF={tmp_path / 'slurm.conf'} is not a file: point SLURM_CONF at "
                                     "your cluster's slurm.conf, or unset it to use the system's")


def test_no_slurm_commands_on_path_is_one_line(tmp_path):
    out = run_cli(["train.py", "-m", "debug=smoke", LAUNCHER, f"hydra.sweep.dir={tmp_path}"],
                  env={"PATH": str(Path(sys.executable).parent)})
    assert one_line_refusal(out).startswith("error: hydra/launcher=slurm_local submits to SLURM, but its command "
                                            "sbatch is not on PATH: ")
