"""Per-sample, per-task masked reconstruction losses.

The release reduces each task's loss to one batch scalar. Here every task returns one value per sample, because
the training objective is their weighted batch mean and the teacher needs the per-sample values to score samples.
"""

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .input_adapters import SEMSEG_IGNORE_INDEX


def patch_normalize(image: torch.Tensor, patch: int, eps: float = 1e-6) -> torch.Tensor:
    """Normalise each patch x patch x C block to zero mean, unit (unbiased) variance. B x C x H x W -> same."""
    B, C, H, W = image.shape
    gh, gw = H // patch, W // patch
    blocks = image.reshape(B, C, gh, patch, gw, patch).permute(0, 2, 4, 3, 5, 1).reshape(B, gh, gw, -1)
    blocks = (blocks - blocks.mean(-1, keepdim=True)) / (blocks.var(-1, keepdim=True) + eps).sqrt()
    return blocks.reshape(B, gh, gw, patch, patch, C).permute(0, 5, 1, 3, 2, 4).reshape(B, C, H, W)


def token_mask_to_pixels(mask: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Upsample a token mask B x N (1 = masked) on ``grid`` to pixels B x H x W (nearest)."""
    mask = mask.reshape(mask.shape[0], 1, *grid).float()
    return F.interpolate(mask, size=size, mode="nearest").squeeze(1)


def masked_mean_per_sample(pixel_loss: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of B x H x W losses over the weighted pixels of each sample.

    Returns (loss B, valid B): samples without any weighted pixel get loss 0 and valid False, so that batch means
    skip them (the release's ``nanmean``) instead of counting them as perfect.
    """
    total = weight.flatten(1).sum(1)
    loss = (pixel_loss * weight).flatten(1).sum(1) / total.clamp_min(1.0)
    return loss, total > 0


@dataclass
class TaskLoss:
    """One task's per-sample losses (B) and which samples have at least one pixel to score (B bool)."""

    per_sample: torch.Tensor
    valid: torch.Tensor


class MultiMAELoss(nn.Module):
    """Masked losses of all output tasks: MSE (rgb, norm_rgb), L1 (depth), cross-entropy (semseg).

    Args:
        tasks: output task -> the input modality whose mask decides which pixels count (``norm_rgb`` -> ``rgb``).
        patch_size: full-resolution patch size (used by norm_rgb's per-patch normalisation and mask upsampling).
        strides: task -> output resolution divisor (semseg is predicted at 1/4 of the image; others at 1).
        weights: task -> weight of its loss in the training objective (default 1 for each).
        loss_on_unmasked: score every pixel, not only hidden ones.
    """

    def __init__(
        self,
        *,
        tasks: dict[str, str],
        patch_size: int,
        strides: dict[str, int] | None = None,
        weights: dict[str, float] | None = None,
        loss_on_unmasked: bool = False,
        ignore_index: int = SEMSEG_IGNORE_INDEX,
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        self.tasks = dict(tasks)
        self.patch_size = patch_size
        self.strides = {t: int((strides or {}).get(t, 1)) for t in tasks}
        self.weights = {t: float((weights or {}).get(t, 1.0)) for t in tasks}
        self.loss_on_unmasked = loss_on_unmasked
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def target_for(self, task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if task == "norm_rgb":
            return patch_normalize(batch["rgb"].float(), self.patch_size)
        return batch[task]

    def forward(
        self, preds: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
    ) -> dict[str, TaskLoss]:
        """preds[task]: B x C x h x w; batch[task]: target (rgb/depth B x C x H x W float, semseg B x h x w long);
        masks[input task]: B x N (1 = masked). Returns task -> TaskLoss."""
        out = {}
        for task, mask_task in self.tasks.items():
            pred = preds[task].float()
            target = self.target_for(task, batch)
            size = pred.shape[-2:]
            if task == "semseg":
                pixel = F.cross_entropy(
                    pred, target, reduction="none", ignore_index=self.ignore_index, label_smoothing=self.label_smoothing
                )
                weight = (target != self.ignore_index).float()
            else:
                diff = pred - target.float()
                pixel = diff.abs().mean(1) if task == "depth" else diff.pow(2).mean(1)
                weight = torch.ones_like(pixel)
            if not self.loss_on_unmasked:
                mask = masks.get(mask_task)
                if mask is not None:  # a task that is not an input is hidden everywhere: every pixel counts
                    unit = self.patch_size // self.strides[task]
                    weight = weight * token_mask_to_pixels(mask, (size[0] // unit, size[1] // unit), size)
            loss, valid = masked_mean_per_sample(pixel, weight)
            out[task] = TaskLoss(loss, valid)
        return out

    def objective(self, losses: dict[str, TaskLoss]) -> torch.Tensor:
        """Per-sample training objective: the weighted sum of task losses (B). Invalid task values add 0."""
        total = 0.0
        for task, tl in losses.items():
            total = total + self.weights[task] * tl.per_sample * tl.valid
        return total
