"""Numerics and speed settings shared by the loops: precision, autocast, gradient scaling, compilation."""

from contextlib import nullcontext

import torch

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
