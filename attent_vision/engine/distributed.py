"""Process-group set-up and the few collectives the loops need.

Rank detection order: torchrun (RANK / WORLD_SIZE / LOCAL_RANK), then SLURM (SLURM_PROCID / SLURM_NTASKS /
SLURM_LOCALID, with MASTER_ADDR / MASTER_PORT set by the launcher), then a single process.
"""

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist


@dataclass
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


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


def pick_device(preference: str, local_rank: int) -> torch.device:
    """``auto``: this rank's CUDA device when available, else the CPU. ``cpu``/``cuda``/``cuda:N`` as given."""
    if preference == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def init_distributed(device_preference: str = "auto") -> DistEnv:
    """Join the process group when launched with several ranks; returns this process's DistEnv."""
    rank, world_size, local_rank = detect_ranks()
    device = pick_device(device_preference, local_rank)
    if world_size > 1 and not torch_dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        os.environ.setdefault("RANK", str(rank))
        os.environ.setdefault("WORLD_SIZE", str(world_size))
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch_dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown_distributed() -> None:
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def barrier(dist: DistEnv) -> None:
    if dist.distributed:
        torch_dist.barrier()


def all_gather_cat(tensor: torch.Tensor, dist: DistEnv) -> torch.Tensor:
    """Concatenate a 1-D tensor of possibly different length from every rank (rank order)."""
    if not dist.distributed:
        return tensor
    size = torch.tensor([tensor.numel()], device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(dist.world_size)]
    torch_dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros(longest, dtype=tensor.dtype, device=tensor.device)
    padded[: tensor.numel()] = tensor
    gathered = [torch.zeros_like(padded) for _ in range(dist.world_size)]
    torch_dist.all_gather(gathered, padded)
    return torch.cat([g[: int(s.item())] for g, s in zip(gathered, sizes)])


def all_reduce_sum(tensor: torch.Tensor, dist: DistEnv) -> torch.Tensor:
    if dist.distributed:
        torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.SUM)
    return tensor


def broadcast_object(obj, dist: DistEnv):
    """Rank 0's ``obj`` on every rank."""
    if not dist.distributed:
        return obj
    holder = [obj]
    torch_dist.broadcast_object_list(holder, src=0)
    return holder[0]
