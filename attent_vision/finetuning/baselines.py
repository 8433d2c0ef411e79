"""The trivial baselines every fine-tuning result is compared with.

A baseline predicts one constant learned from the training data (statistics gathered during the first training
epoch, before mixup): the majority class (classification: label counts; segmentation: pixel counts) or one depth
for every pixel (the geometric mean of the valid training depths, the constant that best fits ratio-based metrics
like delta_1). A fine-tune that does not clearly beat it has learned nothing from the image. Each task kind
(task_kinds/) picks its baseline (``TaskKind.baseline_statistics``); these are the built-in kinds'. The trainer
sums ``sums`` over ranks, checkpoints it, and evaluates ``prediction(constant, output)`` with the kind's metric.
"""

import math

import torch

from ..metrics import SEG_IGNORE_INDEX


class MajorityClass:
    """Label (classification) or pixel (segmentation) class counts of the training targets (ignore index left out);
    predicts the most frequent class as one-hot scores."""

    def __init__(self, num_classes: int):
        self.sums = torch.zeros(num_classes, dtype=torch.float64)

    @torch.no_grad()
    def update(self, batch: dict) -> None:
        target = batch["target"].cpu()
        labels = target[target != SEG_IGNORE_INDEX].long().flatten()
        self.sums += torch.bincount(labels, minlength=self.sums.numel())[: self.sums.numel()].double()

    def constant(self) -> int | None:
        return int(self.sums.argmax()) if self.sums.sum() > 0 else None

    @staticmethod
    def prediction(constant: int, output: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros_like(output)
        logits[:, constant] = 1.0  # one-hot scores: cls B x C, semseg B x C x H x W
        return logits


class ConstantDepth:
    """The sum of log depths and the count of the valid training pixels; predicts their geometric mean."""

    def __init__(self):
        self.sums = torch.zeros(2, dtype=torch.float64)

    @torch.no_grad()
    def update(self, batch: dict) -> None:
        target = batch["target"].cpu()
        valid = batch["valid"].cpu() & (target > 0)
        self.sums += torch.tensor([float(target[valid].log().sum()), float(valid.sum())], dtype=torch.float64)

    def constant(self) -> float | None:
        return math.exp(float(self.sums[0] / self.sums[1])) if self.sums[1] > 0 else None

    @staticmethod
    def prediction(constant: float, output: torch.Tensor) -> torch.Tensor:
        return torch.full_like(output, float(constant))
