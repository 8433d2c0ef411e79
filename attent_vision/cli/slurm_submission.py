"""A sweep's jobs through SLURM, as attent-vision's launcher runs them (``hydra_plugins.attent_vision_slurm``, the
``_target_`` of conf/shared/hydra/launcher/slurm_*.yaml; built on hydra-submitit-launcher's).

Before it submits: is there a cluster, does it answer, does it have the partition the launcher names? And when
``sbatch`` refuses the jobs anyway: one line with SLURM's reason. hydra-submitit-launcher submits first and asks
later: a typo in ``hydra.launcher.partition``, a login shell without SLURM's commands, or a controller that is down
all end in a traceback wall from ``submitit.core.utils`` (``FailedJobError: sbatch: error: ...``). Here each is a
:class:`SlurmUnavailable`, which the launcher prints as one line before it exits with status 2.

After it submits: hydra-submitit-launcher waits for the jobs in order and stops at the first that ended without a
result (cancelled, killed for memory, its node lost, requeued too often), with a traceback and no summary, while
the others go on running. :func:`wait_for_results` waits for every job, says in one line which ended without a
result and where its log is, and leaves the verdict to the sweep's summary (cli/multirun_summary.py), which counts
such a job as failed. A job that left the queue without a result is noticed through ``squeue``, so this holds on
clusters without accounting too, where submitit cannot learn a job's state from ``sacct``.
"""

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

from ..errors import UserError

log = logging.getLogger("attent_vision")

ANSWER_TIMEOUT_S = 30  # sinfo retries a controller that does not answer (9 s on Debian's SLURM 22.05)
POLL_S = 1.0  # how often the sweep looks for its jobs' result files
QUEUE_CHECK_S = 5.0  # how often it asks squeue which jobs are still queued or running
GONE_GRACE_S = 15.0  # a job out of the queue this long without a result file (a shared file system may show it
#                      late) has ended without one


class SlurmUnavailable(UserError):
    """The launcher cannot submit: SLURM is not installed here, its controller does not answer, or the request names
    something the cluster does not have."""


def check_cluster(partition: str | None, launcher: str) -> None:
    """Raise SlurmUnavailable unless ``sbatch`` is on PATH, the controller answers, and ``partition`` (when set,
    a name or a comma-separated list, as ``sbatch --partition`` takes it) is one of the cluster's partitions."""
    for command in ("sbatch", "sinfo"):
        if shutil.which(command) is None:
            raise SlurmUnavailable(
                f"hydra/launcher={launcher} submits to SLURM, but its command {command} is not on PATH: run the sweep "
                "on a SLURM login node (or add SLURM's bin folder to PATH), or use hydra/launcher=local_2cpu to run "
                "the jobs on this machine")
    conf = os.environ.get("SLURM_CONF")
    if conf and not os.path.isfile(conf):  # sinfo would retry for a minute before it says so
        raise SlurmUnavailable(f"SLURM_CONF={conf} is not a file: point SLURM_CONF at your cluster's slurm.conf, or "
                               "unset it to use the system's")
    partitions = cluster_partitions()
    wanted = [p.strip() for p in (partition or "").split(",") if p.strip()]
    unknown = [p for p in wanted if p not in partitions]
    if unknown:
        raise SlurmUnavailable(
            f"hydra.launcher.partition={partition}: this cluster has no partition {', '.join(unknown)} (it has: "
            f"{', '.join(partitions) or 'none'}); set hydra.launcher.partition to one of them (sinfo lists them)")


def cluster_partitions() -> list[str]:
    """The partitions the controller knows, in sinfo's order; SlurmUnavailable when it does not answer."""
    try:
        out = subprocess.run(["sinfo", "--noheader", "--format=%R"], capture_output=True, text=True,
                             timeout=ANSWER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SlurmUnavailable(f"the SLURM controller did not answer within {ANSWER_TIMEOUT_S} s (sinfo): is the "
                               "cluster up? `sinfo` must answer on this machine before a sweep is submitted") from None
    if out.returncode != 0:
        reason = last_line(out.stderr) or f"exit status {out.returncode}"
        raise SlurmUnavailable(f"the SLURM cluster does not answer ({reason}): is slurmctld up, and SLURM_CONF "
                               "(or /etc/slurm/slurm.conf) this cluster's? `sinfo` must answer on this machine before "
                               "a sweep is submitted")
    return list(dict.fromkeys(out.stdout.split()))


def refused(error: Exception) -> SlurmUnavailable:
    """``sbatch``'s refusal (submitit's FailedJobError holds its stderr) as one line."""
    reason = last_line(str(error)).removeprefix("sbatch: error: ")
    return SlurmUnavailable(f"SLURM refused the sweep's jobs: {reason}. Check the hydra.launcher settings "
                            "(partition, account, cpus_per_task, gpus_per_node, mem_gb, timeout_min) against what "
                            "your cluster allows (sinfo, scontrol show partition)")


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def submit_and_wait(launcher, job_overrides, initial_job_idx: int) -> list:
    """hydra-submitit-launcher's ``launch`` for SLURM, checked first and waiting for every job: the JobReturns of the
    jobs that returned a result (Hydra's sweeper reads nothing else from them; the summary reads each job's
    recorded outcome)."""
    import submitit
    from hydra.core.singleton import Singleton
    from hydra.core.utils import filter_overrides
    from omegaconf import OmegaConf
    from submitit.core.utils import FailedJobError

    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    config = launcher.config
    check_cluster(launcher.params.get("partition"), config.hydra.runtime.choices.get("hydra/launcher", "slurm"))
    settings = dict(launcher.params)
    executor = submitit.AutoExecutor(folder=settings.pop("submitit_folder"), cluster="slurm",
                                     slurm_max_num_timeout=settings.pop("max_num_timeout"))
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
    return wait_for_results(dict(zip(range(initial_job_idx, initial_job_idx + len(jobs)), jobs)))


def wait_for_results(jobs: dict) -> list:
    """Wait until every job (sweep job number -> submitit Job) has a result or has left the queue without one;
    the results of those that have one."""
    from submitit.core.utils import UncompletedJobError

    returned, waiting, gone_since, next_queue_check = {}, dict(jobs), {}, time.monotonic() + QUEUE_CHECK_S
    while waiting:
        queued = None
        if time.monotonic() >= next_queue_check:
            queued, next_queue_check = queued_jobs(), time.monotonic() + QUEUE_CHECK_S
        for num, job in list(waiting.items()):
            if job.done():  # its result file, or sacct's final state where there is accounting
                try:
                    returned[num] = job.results()[0]
                except UncompletedJobError as e:  # no result (FailedJobError: the job raised; its log has the trace)
                    ended_without_result(num, job, last_line(str(e).split("Error stream produced:")[0]))
                del waiting[num]
            elif queued is not None and job.job_id not in queued:
                gone_since.setdefault(num, time.monotonic())
            if num in waiting and time.monotonic() - gone_since.get(num, time.monotonic()) > GONE_GRACE_S:
                ended_without_result(num, job, "it left the queue without one")
                del waiting[num]
        if waiting:
            time.sleep(POLL_S)
    return [returned[num] for num in sorted(returned)]


def queued_jobs() -> set[str] | None:
    """The ids of this user's jobs SLURM still has pending or running (array tasks one by one); None when squeue
    cannot say (the controller is busy or restarting): then no job is taken for gone."""
    try:
        out = subprocess.run(["squeue", "--noheader", "--array", "--me", "--format=%i"], capture_output=True,
                             text=True, timeout=ANSWER_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return set(out.stdout.split()) if out.returncode == 0 else None


def ended_without_result(num: int, job, why: str) -> None:
    log.error("job %d (SLURM job %s) ended without a result (%s): cancelled, killed (time, memory) or its node failed; "
              "its log: %s", num, job.job_id, why, job.paths.stderr)
