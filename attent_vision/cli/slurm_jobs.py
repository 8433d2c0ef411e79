"""A sweep's jobs through SLURM, as attent-vision's launcher runs them (hydra_plugins/attent_vision_slurm, the
``_target_`` of conf/shared/hydra/launcher/slurm_*.yaml): check the cluster (slurm_checks.py), submit the sweep
as hydra-submitit-launcher does, and wait for every job.

hydra-submitit-launcher waits for the jobs in order and stops at the first without a result (cancelled, killed for
time or memory, its node lost, or a job that raised), with a traceback and no summary, while the others go on
running; on a cluster without accounting it cannot even learn that such a job ended (submitit asks ``sacct``), and
waits for ever. Here every job is waited for; one that ends without a result is one line (which job, why, where its
log is), and the verdict is the sweep's summary (multirun_summary.py), which counts it as failed. A job that left
the queue without a result is noticed through ``squeue``, so this holds without accounting too.

What goes back to Hydra's sweeper: the results of the jobs that returned one, in job order (the basic sweeper,
the only one this project uses, reads nothing else from them; a sweeper that pairs results with its trials would
need one per job).
"""

import getpass
import logging
import os
import re
import subprocess
import time
from pathlib import Path

from .slurm_checks import ANSWER_TIMEOUT_S, check_cluster, last_line, refused

log = logging.getLogger("attent_vision")

POLL_S = 1.0  # how often the sweep looks for its jobs' result files
QUEUE_CHECK_S = 5.0  # how often it asks squeue which jobs are still pending or running
GONE_GRACE_S = 15.0  # a job out of the queue this long without a result file (a shared file system may show the
#                      file late) has ended without one
_TRACE_RULE = "----------------------\n"  # around the job's traceback in submitit's FailedJobError


def submit_and_wait(launcher, job_overrides, initial_job_idx: int) -> list:
    """hydra-submitit-launcher's ``launch`` for SLURM (``launcher`` is its SlurmLauncher: ``params``, ``config``),
    checked first and waiting for every job."""
    import submitit
    from hydra.core.singleton import Singleton
    from hydra.core.utils import filter_overrides
    from omegaconf import OmegaConf
    from submitit.core.utils import FailedJobError

    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    config, settings = launcher.config, dict(launcher.params)
    other_cluster = "clusters" in (settings.get("additional_parameters") or {})
    check_cluster(settings.get("partition"), config.hydra.runtime.choices.get("hydra/launcher", "slurm"),
                  other_cluster)
    executor_settings = {"slurm_max_num_timeout": settings.pop("max_num_timeout")} \
        if "max_num_timeout" in settings else {}
    executor = submitit.AutoExecutor(folder=settings.pop("submitit_folder"), cluster="slurm", **executor_settings)
    shared = set(OmegaConf.structured(BaseQueueConf).keys())  # keys without the executor's "slurm_" prefix
    executor.update_parameters(**{key if key in shared else f"slurm_{key}": value for key, value in settings.items()})
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if "mode" in config.hydra.sweep:
        os.chmod(sweep_dir, int(str(config.hydra.sweep.mode), 8))
    log.info("submitting %d job(s) to SLURM; sweep folder %s", len(job_overrides), sweep_dir)
    arguments = []
    for num, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info("\t#%d : %s", num, " ".join(filter_overrides(overrides)))
        arguments.append((list(overrides), "hydra.sweep.dir", num, f"job_id_for_{num}", Singleton.get_state()))
    try:
        jobs = executor.map_array(launcher, *zip(*arguments))
    except FailedJobError as e:  # sbatch refused the array
        raise refused(e) from None
    return wait_for_results(dict(enumerate(jobs, start=initial_job_idx)), watch_queue=not other_cluster)


def wait_for_results(jobs: dict, watch_queue: bool = True) -> list:
    """Wait until every job (sweep job number -> submitit Job) has a result or has ended without one; the results
    of those that have one, in job order. ``watch_queue``: notice jobs that left the queue (squeue)."""
    returned, waiting, missing_since = {}, dict(jobs), {}
    next_queue_check = time.monotonic() + QUEUE_CHECK_S
    while waiting:
        for num, job in list(waiting.items()):
            if job.done():  # its result file, or sacct's final state where there is accounting
                del waiting[num]
                result = collect(num, job)
                if result is not None:
                    returned[num] = result
        if waiting and watch_queue and time.monotonic() >= next_queue_check:
            next_queue_check = time.monotonic() + QUEUE_CHECK_S
            queued = queued_jobs()
            for num, job in list(waiting.items()) if queued is not None else ():
                if job.job_id in queued:  # (again: a job requeued after a node failure leaves and comes back)
                    missing_since.pop(num, None)
                elif time.monotonic() - missing_since.setdefault(num, time.monotonic()) > GONE_GRACE_S:
                    del waiting[num]
                    ended_without_result(num, job, "it left the queue without one")
        if waiting:
            time.sleep(POLL_S)
    return [returned[num] for num in sorted(returned)]


def collect(num: int, job):
    """The job's result (rank 0's), or None after a line saying why it has none."""
    from submitit.core.utils import FailedJobError, UncompletedJobError

    try:
        return job.results()[0]
    except FailedJobError as e:  # the job raised: its log has the whole traceback
        parts = str(e).split(_TRACE_RULE)
        error = last_line(parts[1]) if len(parts) > 2 else last_line(str(e))
        log.error("job %d (SLURM job %s) raised %s; its log: %s", num, job.job_id, error, job.paths.stderr)
    except UncompletedJobError as e:  # no result file: SLURM's final state (from sacct) says why
        state = re.search(r"\(state: ([^)]*)\)", str(e))
        ended_without_result(num, job, f"SLURM state {state.group(1)}" if state else last_line(str(e)))
    except Exception as e:  # a result file that cannot be read
        log.error("job %d (SLURM job %s): its result file could not be read (%s: %s); its log: %s", num, job.job_id,
                  type(e).__name__, e, job.paths.stderr)
    return None


_squeue_failed = False  # logged once per process


def queued_jobs() -> set[str] | None:
    """The ids of this user's jobs SLURM still has pending or running (array tasks one by one); None when squeue
    cannot say (the controller is busy or restarting): then no job is taken for gone."""
    global _squeue_failed
    try:
        out = subprocess.run(["squeue", "--noheader", "--array", f"--user={getpass.getuser()}", "--format=%i"],
                             capture_output=True, text=True, timeout=ANSWER_TIMEOUT_S)
        failure = None if out.returncode == 0 else last_line(out.stderr) or f"exit status {out.returncode}"
    except (OSError, subprocess.TimeoutExpired) as e:
        failure = str(e)
    if failure is None:
        return set(out.stdout.split())
    if not _squeue_failed:
        _squeue_failed = True
        log.warning("squeue failed (%s): jobs that end without a result are noticed only through sacct", failure)
    return None


def ended_without_result(num: int, job, why: str) -> None:
    log.error("job %d (SLURM job %s) ended without a result (%s): cancelled, killed (time, memory) or its node failed; "
              "its log: %s", num, job.job_id, why, job.paths.stderr)
