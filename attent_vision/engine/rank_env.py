"""Which rank this process is, from the environment alone, so that the command line can use it before torch is
imported.

Rank detection order: torchrun (RANK / WORLD_SIZE / LOCAL_RANK), then SLURM (SLURM_PROCID / SLURM_NTASKS /
SLURM_LOCALID, with MASTER_ADDR / MASTER_PORT set by the launcher), then a single process.
"""

import os


def env_rank() -> int:
    """This process's rank as ``detect_ranks`` finds it, without its rendezvous set-up (for code that only needs to
    know whether it is rank 0, such as a job that failed on its config)."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return int(env["RANK"])
    return int(env.get("SLURM_PROCID", "0")) if int(env.get("SLURM_NTASKS", "1")) > 1 else 0


def detect_ranks() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun, else SLURM, else (0, 1, 0).

    Under SLURM with several tasks (e.g. hydra-submitit-launcher with tasks_per_node > 1) the rendezvous address is
    taken from submitit's TorchDistributedEnvironment, which exports MASTER_ADDR/PORT, RANK and WORLD_SIZE.
    """
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0))
    if int(env.get("SLURM_NTASKS", "1")) > 1:
        if "MASTER_ADDR" not in env:
            from ..extras import require

            helpers = require("submitit.helpers", "slurm", "a multi-task SLURM job")
            helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        return int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0))
    return 0, 1, 0


def rank_hydra_overrides(argv: list[str]) -> list[str]:
    """Extra Hydra overrides for ranks other than 0 under torchrun: they must not create run folders or log files
    of their own (rank 0's folder is broadcast to them), and they log warnings only, to the console."""
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        return []
    import tempfile

    scratch = tempfile.mkdtemp(prefix=f"attent-rank{rank}-")
    extra = ["hydra.output_subdir=null", "hydra/job_logging=worker_rank"]
    given = {a.split("=", 1)[0] for a in argv}
    extra += [f"{key}={scratch}" for key in ("hydra.run.dir", "hydra.sweep.dir") if key not in given]
    return extra
