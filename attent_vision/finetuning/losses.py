"""Fine-tuning objectives: classification (timm's label-smoothing / soft-target cross-entropy, the latter for
mixup/cutmix), segmentation (cross-entropy ignoring label 255) and depth (masked BerHu or L1 on valid pixels)."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

SEG_IGNORE_INDEX = 255


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


class FinetuneLoss(nn.Module):
    """loss(output, batch) for one task kind. Classification targets may be mixup soft targets (B x C)."""

    def __init__(self, kind: str, loss: str, label_smoothing: float = 0.0, mixup: bool = False):
        super().__init__()
        self.kind, self.loss = kind, loss
        if kind == "cls":
            # With mixup, timm's Mixup already folds label smoothing into the soft targets.
            self.criterion = SoftTargetCrossEntropy() if mixup else (
                LabelSmoothingCrossEntropy(label_smoothing) if label_smoothing > 0 else nn.CrossEntropyLoss())

    def forward(self, output: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        output = output.float()
        if self.kind == "cls":
            return self.criterion(output, target)
        if self.kind == "semseg":
            if not bool((target != SEG_IGNORE_INDEX).any()):
                return output.sum() * 0.0  # cross_entropy would return NaN (a mean over no pixels)
            return F.cross_entropy(output, target, ignore_index=SEG_IGNORE_INDEX)
        fn = masked_berhu if self.loss == "berhu" else masked_l1
        return fn(output, target, valid)
