"""Numerics and speed settings shared by the loops: precision, autocast, gradient scaling, model wrapping."""

from contextlib import nullcontext

import torch
from torch.nn.parallel import DistributedDataParallel

from ..errors import ConfigError


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 on CUDA devices that support it, else fp32. fp16/bf16 are refused on the CPU."""
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32"
    if precision in ("bf16", "fp16") and device.type != "cuda":
        raise ConfigError(f"trainer.precision={precision} needs a CUDA device; use trainer.precision=fp32 on the CPU")
    return precision


def autocast(precision: str, device: torch.device):
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """A real scaler only for fp16 (bf16 has fp32's range and needs none)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def configure_backends(device: torch.device) -> None:
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def wrap_model(model: torch.nn.Module, device: torch.device, distributed: bool, compile: bool) -> torch.nn.Module:
    """The module the training step calls: DDP under several ranks, then ``torch.compile`` when asked. The plain
    ``model`` stays the one to checkpoint, evaluate and export."""
    wrapped = model
    if distributed:
        wrapped = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if compile:
        wrapped = torch.compile(wrapped)
    return wrapped
