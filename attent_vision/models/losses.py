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


def top_patches_mean(pixel_loss: torch.Tensor, weight: torch.Tensor, unit: int, q: float) -> torch.Tensor:
    """The mean of each sample's ``q`` highest-loss patches (a patch-aware score, after PASS, AAAI 2024).

    pixel_loss, weight: B x H x W (H, W multiples of ``unit``, the patch side at this resolution); a patch's loss
    is the weighted mean of its pixels, and only patches with weight (the hidden ones) count. Returns B: the mean
    of the ceil(q x M) largest of a sample's M scored patches (0 when it has none). The plain mean dilutes the
    few patches a model gets wrong among many it reconstructs well, and which patches are hidden is luck: the
    top of the distribution repeats better between mask draws.
    """
    B, H, W = pixel_loss.shape
    def per_patch(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(B, H // unit, unit, W // unit, unit).sum(dim=(2, 4)).flatten(1)
    sums, counts = per_patch(pixel_loss * weight), per_patch(weight)
    scored = counts > 0
    patch_loss = torch.where(scored, sums / counts.clamp_min(1e-12), torch.full_like(sums, float("-inf")))
    ordered = patch_loss.sort(dim=1, descending=True).values.clamp_min(0)  # -inf (unscored) last, then zeroed
    take = torch.ceil(q * scored.sum(1).float() - 1e-6).long().clamp_min(1)  # B
    top_sum = ordered.cumsum(1).gather(1, (take - 1)[:, None]).squeeze(1)
    return torch.where(scored.any(1), top_sum / take, torch.zeros_like(top_sum))


@dataclass
class TaskLoss:
    """One task's per-sample losses (B), which samples have at least one pixel to score (B bool), and the value
    that scores a sample for selection (B): the same loss, or its top-patch mean (``score_top_q``)."""

    per_sample: torch.Tensor
    valid: torch.Tensor
    score: torch.Tensor | None = None

    def __post_init__(self):
        if self.score is None:
            self.score = self.per_sample


class MultiMAELoss(nn.Module):
    """Masked losses of all output tasks: MSE (rgb, norm_rgb), L1 (depth), cross-entropy (semseg).

    Args:
        tasks: output task -> the input modality whose mask decides which pixels count (``norm_rgb`` -> ``rgb``).
        patch_size: full-resolution patch size (used by norm_rgb's per-patch normalisation and mask upsampling).
        strides: task -> output resolution divisor (semseg is predicted at 1/4 of the image; others at 1).
        weights: task -> weight of its loss in the training objective (default 1 for each).
        loss_on_unmasked: score every pixel, not only hidden ones.
        score_top_q: None (a sample's selection score is its loss) or q in (0, 1]: its score is the mean of its q
            highest-loss patches (:func:`top_patches_mean`); the training objective is unchanged.
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
        score_top_q: float | None = None,
    ):
        super().__init__()
        self.tasks = dict(tasks)
        self.patch_size = patch_size
        self.strides = {t: int((strides or {}).get(t, 1)) for t in tasks}
        self.weights = {t: float((weights or {}).get(t, 1.0)) for t in tasks}
        self.loss_on_unmasked = loss_on_unmasked
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        if score_top_q is not None and not 0 < score_top_q <= 1:
            raise ValueError(f"the top-patch share q must be in (0, 1], got {score_top_q}")
        self.score_top_q = score_top_q

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
            unit = self.patch_size // self.strides[task]
            if not self.loss_on_unmasked:
                mask = masks.get(mask_task)
                if mask is not None:  # a task that is not an input is hidden everywhere: every pixel counts
                    weight = weight * token_mask_to_pixels(mask, (size[0] // unit, size[1] // unit), size)
            loss, valid = masked_mean_per_sample(pixel, weight)
            score = None
            if self.score_top_q is not None:
                with torch.no_grad():  # a selection score, never differentiated
                    score = top_patches_mean(pixel.detach(), weight, unit, self.score_top_q)
            out[task] = TaskLoss(loss, valid, score)
        return out

    def objective(self, losses: dict[str, TaskLoss]) -> torch.Tensor:
        """Per-sample training objective: the weighted sum of task losses (B). Invalid task values add 0."""
        total = 0.0
        for task, tl in losses.items():
            total = total + self.weights[task] * tl.per_sample * tl.valid
        return total
