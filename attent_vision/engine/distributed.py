"""Process-group set-up and the few collectives the loops need.

Which rank a process is comes from the environment alone (rank_env.py, importable before torch).
"""

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

from .rank_env import detect_ranks


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


def all_gather_objects(obj, dist: DistEnv) -> list:
    """Every rank's picklable ``obj``, in rank order (``[obj]`` in one process)."""
    if not dist.distributed:
        return [obj]
    out = [None] * dist.world_size
    torch_dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, dist: DistEnv):
    """Rank 0's ``obj`` on every rank."""
    if not dist.distributed:
        return obj
    holder = [obj]
    torch_dist.broadcast_object_list(holder, src=0)
    return holder[0]
