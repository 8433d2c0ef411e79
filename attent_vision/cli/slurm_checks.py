"""Before a sweep goes to SLURM: is there a cluster, does it answer, does it have the partition the launcher names?
And when ``sbatch`` refuses the jobs anyway: one line with SLURM's reason.

hydra-submitit-launcher submits first and asks later: a typo in ``hydra.launcher.partition``, a login shell without
SLURM's commands, or a controller that is down all end in a traceback wall from ``submitit.core.utils``
(``FailedJobError: sbatch: error: ...``). Here each is a :class:`SlurmUnavailable`, which attent-vision's launcher
(hydra_plugins/attent_vision_slurm) prints as one line before it exits with status 2, nothing submitted.
"""

import os
import shutil
import subprocess

from ..errors import UserError

ANSWER_TIMEOUT_S = 30  # sinfo retries a controller that does not answer (9 s on Debian's SLURM 22.05)


class SlurmUnavailable(UserError):
    """The launcher cannot submit: SLURM is not installed here, its controller does not answer, or the request names
    something the cluster does not have."""


def check_cluster(partition: str | None, launcher: str, other_cluster: bool = False) -> None:
    """Raise SlurmUnavailable unless ``sbatch`` is on PATH, the controller answers, and ``partition`` (when set,
    a name or a comma-separated list, as ``sbatch --partition`` takes it) is one of the cluster's partitions.
    ``other_cluster``: the jobs go to another cluster of a federation (``--clusters``), whose partitions this
    machine's controller does not list, so only the commands are checked."""
    for command in ("sbatch", "sinfo", "squeue"):
        if shutil.which(command) is None:
            raise SlurmUnavailable(
                f"hydra/launcher={launcher} submits to SLURM, but its command {command} is not on PATH: run the sweep "
                "on a SLURM login node (or add SLURM's bin folder to PATH), or use hydra/launcher=local_2cpu to run "
                "the jobs on this machine")
    conf = os.environ.get("SLURM_CONF")
    if conf and not os.path.isfile(conf):  # sinfo would retry for a minute before it says so
        raise SlurmUnavailable(f"SLURM_CONF={conf} is not a file: point SLURM_CONF at your cluster's slurm.conf, or "
                               "unset it to use the system's")
    if other_cluster:
        return
    partitions = cluster_partitions()
    wanted = [p.strip() for p in (partition or "").split(",") if p.strip()]
    unknown = [p for p in wanted if p not in partitions]
    if unknown:
        raise SlurmUnavailable(
            f"hydra.launcher.partition={partition}: this cluster has no partition {', '.join(unknown)} (it has: "
            f"{', '.join(partitions) or 'none'}); set hydra.launcher.partition to one of them (sinfo lists them)")


def cluster_partitions() -> list[str]:
    """Every partition the controller knows (hidden ones and those closed to this user's groups too: sbatch, not
    this check, says who may use them), in sinfo's order; SlurmUnavailable when the controller does not answer."""
    try:
        out = subprocess.run(["sinfo", "--all", "--noheader", "--format=%R"], capture_output=True, text=True,
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
