"""Whole-set evaluation of a fine-tuned model, and the trivial baseline every result is compared with.

The baseline predicts one constant learned from the training data (statistics gathered during the first training
epoch, before mixup): the majority class (classification: label counts; segmentation: pixel counts) or one depth
for every pixel (the geometric mean of the valid training depths, the constant that best fits ratio-based metrics
like delta_1). A fine-tune that does not clearly beat it has learned nothing from the image.
"""

import math

import torch

from ..metrics import ConfusionMatrix, DepthMetrics, TopKAccuracy
from ..engine.distributed import DistEnv, all_reduce_sum


def make_metric(kind: str, num_classes: int | None, depth_protocol: str = "standard"):
    if kind == "cls":
        return TopKAccuracy((1, 5))
    if kind == "semseg":
        return ConfusionMatrix(num_classes)
    return DepthMetrics(depth_protocol)


def update_metric(metric, kind: str, output: torch.Tensor, batch: dict) -> None:
    if kind == "cls":
        metric.update(output, batch["target"])
    elif kind == "semseg":
        metric.update(output.argmax(1), batch["target"])
    else:
        metric.update(output, batch["target"], batch["valid"])


def reduce_metric(metric, dist: DistEnv) -> dict[str, float]:
    """Sum the accumulators over ranks, then compute (whole-set metrics, whatever the sharding)."""
    sums = metric.sums().to(dist.device)
    all_reduce_sum(sums, dist)
    metric.load_sums(sums.cpu())
    return metric.compute()


class TrainStatistics:
    """What the trivial baseline needs from the training targets: label/pixel class counts or log-depth sums."""

    def __init__(self, kind: str, num_classes: int | None):
        self.kind = kind
        size = 2 if kind == "depth" else num_classes
        self.sums = torch.zeros(size, dtype=torch.float64)

    @torch.no_grad()
    def update(self, batch: dict) -> None:
        target = batch["target"].cpu()
        if self.kind == "depth":
            valid = batch["valid"].cpu() & (target > 0)
            self.sums += torch.tensor([float(target[valid].log().sum()), float(valid.sum())], dtype=torch.float64)
        else:
            labels = target[target != 255].long().flatten()
            self.sums += torch.bincount(labels, minlength=self.sums.numel())[: self.sums.numel()].double()

    def constant(self) -> float | int | None:
        """The baseline's prediction: the majority class, or the geometric-mean depth (None before any data)."""
        if self.kind == "depth":
            return math.exp(float(self.sums[0] / self.sums[1])) if self.sums[1] > 0 else None
        return int(self.sums.argmax()) if self.sums.sum() > 0 else None


def constant_prediction(kind: str, constant, output: torch.Tensor, num_classes: int | None) -> torch.Tensor:
    """A prediction shaped like ``output`` that always says ``constant``."""
    if kind == "depth":
        return torch.full_like(output, float(constant))
    logits = torch.zeros_like(output)
    logits[:, constant] = 1.0  # one-hot scores: cls B x C, semseg B x C x H x W
    return logits
