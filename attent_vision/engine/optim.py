"""Optimisers and the learning-rate schedule (timm's helpers), sized by the steps a run will take."""

import torch
import torch.nn as nn
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler


def absolute_lr(blr: float, lr: float | None, global_batch: int) -> float:
    """lr = blr * global_batch / 256 (the MAE scaling rule) unless an absolute ``lr`` is given."""
    return float(lr) if lr is not None else blr * global_batch / 256


def build_optimizer(model: nn.Module, cfg, global_batch: int, device: torch.device) -> torch.optim.Optimizer:
    """AdamW. By default weight decay applies to every parameter, biases and norms included, as in the MultiMAE
    release; ``decay_norm_and_bias=false`` exempts 1-D parameters (the common ViT practice)."""
    # timm's helper skips parameters that do not require gradients (the fixed position embeddings).
    fused = {"auto": device.type == "cuda", "true": True, "false": False}[str(cfg.fused).lower()]
    kwargs = dict(betas=tuple(cfg.betas), eps=cfg.eps)
    if fused:
        kwargs["fused"] = True
    return create_optimizer_v2(
        model,
        opt=cfg.name,
        lr=absolute_lr(cfg.blr, cfg.lr, global_batch),
        weight_decay=cfg.weight_decay,
        filter_bias_and_bn=not cfg.decay_norm_and_bias,
        **kwargs,
    )


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, min_lr: float,
                    warmup_lr: float = 0.0):
    """Per-step linear warm-up from ``warmup_lr``, then cosine to ``min_lr`` exactly at the last planned step (timm's
    scheduler; it applies each parameter group's ``lr_scale``, which layer decay uses)."""
    warmup_steps = min(warmup_steps, max(total_steps - 1, 0))
    return CosineLRScheduler(
        optimizer,
        t_initial=max(total_steps - warmup_steps, 1),
        lr_min=min_lr,
        warmup_t=warmup_steps,
        warmup_lr_init=warmup_lr,
        warmup_prefix=True,
        t_in_epochs=False,
    )
