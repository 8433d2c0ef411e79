"""Fine-tuning objectives of the built-in task kinds (task_kinds/): classification (timm's label-smoothing /
soft-target cross-entropy, the latter for mixup/cutmix), segmentation (cross-entropy ignoring label 255) and depth
(masked BerHu or L1 on valid pixels). Each is callable(output float32, target, valid or None) -> scalar."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

from ..metrics import SEG_IGNORE_INDEX


def masked_berhu(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, threshold: float = 0.2) -> torch.Tensor:
    """Reverse Huber loss over valid pixels (the reference depth recipe): |d| below c, (d^2 + c^2) / 2c above, with
    c = ``threshold`` x the batch's largest valid |d|. pred, target: B x 1 x H x W; valid: bool, same shape."""
    diff = (pred - target)[valid]
    if diff.numel() == 0:
        return pred.sum() * 0.0  # keeps the graph (and DDP) intact on a batch without valid pixels
    abs_diff = diff.abs()
    c = (threshold * abs_diff.max().detach()).clamp_min(1e-5)
    loss = torch.where(abs_diff <= c, abs_diff, (diff**2 + c**2) / (2 * c))
    return loss.mean()


def masked_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    diff = (pred - target)[valid]
    return diff.abs().mean() if diff.numel() else pred.sum() * 0.0


class ClassificationLoss:
    """Cross-entropy on logits B x C; targets are labels B, or soft targets B x C with mixup."""

    def __init__(self, label_smoothing: float = 0.0, mixup: bool = False):
        # With mixup, timm's Mixup already folds label smoothing into the soft targets.
        self.criterion = SoftTargetCrossEntropy() if mixup else (
            LabelSmoothingCrossEntropy(label_smoothing) if label_smoothing > 0 else nn.CrossEntropyLoss())

    def __call__(self, output: torch.Tensor, target: torch.Tensor, valid=None) -> torch.Tensor:
        return self.criterion(output, target)


def segmentation_loss(output: torch.Tensor, target: torch.Tensor, valid=None) -> torch.Tensor:
    """Cross-entropy over the labelled pixels: logits B x C x H x W, labels B x H x W (255 ignored)."""
    if not bool((target != SEG_IGNORE_INDEX).any()):
        return output.sum() * 0.0  # cross_entropy would return NaN (a mean over no pixels)
    return F.cross_entropy(output, target, ignore_index=SEG_IGNORE_INDEX)
