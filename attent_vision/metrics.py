"""Downstream metrics, defined once: classification top-k, segmentation mIoU and pixel accuracy, depth delta/abs
rel/RMSE.

Every metric is an accumulator: ``update`` with one batch, ``compute`` over everything seen so far. Whole-set
metrics need whole-set sums (a mean of per-batch means weighs small batches wrongly), so accumulators keep sums
and counts only, in float64, and ``sums()`` / ``load_sums()`` expose them as one tensor that distributed
evaluation all-reduces before ``compute``.

Definitions (see docs/finetune.md and the project's data-and-metrics reference):

- top-k: fraction of samples whose label is among the k highest logits.
- mIoU: a C x C confusion matrix over all non-ignored pixels of the set; IoU_c = TP / (TP + FP + FN), averaged over
  the classes whose union TP + FP + FN is non-zero. Pixel accuracy = trace / total.
- depth, on valid pixels (valid mask and target > 0): delta_k = fraction with max(pred/target, target/pred) <
  1.25^k; abs rel = mean |pred - target| / target; RMSE = sqrt(mean (pred - target)^2). ``protocol="standard"``
  averages over all valid pixels of the set; ``protocol="multimae"`` reproduces the MultiMAE script (mean over
  batches of per-batch values), offered only to compare with numbers computed that way.
"""

import torch

SEG_IGNORE_INDEX = 255


class TopKAccuracy:
    """Top-k accuracy over a whole set. update(logits B x C, labels B)."""

    def __init__(self, ks: tuple[int, ...] = (1, 5)):
        self.ks = tuple(ks)
        self.correct = torch.zeros(len(self.ks), dtype=torch.float64)
        self.count = torch.zeros((), dtype=torch.float64)

    @torch.no_grad()
    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        k_max = min(max(self.ks), logits.shape[1])
        top = logits.topk(k_max, dim=1).indices.cpu()  # B x k_max
        hit = top == labels.cpu().view(-1, 1)
        for i, k in enumerate(self.ks):
            self.correct[i] += hit[:, : min(k, k_max)].any(dim=1).sum()
        self.count += labels.numel()

    def sums(self) -> torch.Tensor:
        return torch.cat([self.correct, self.count.view(1)])

    def load_sums(self, sums: torch.Tensor) -> None:
        self.correct, self.count = sums[:-1].clone().double(), sums[-1].clone().double()

    def compute(self) -> dict[str, float]:
        n = float(self.count)
        return {f"top{k}": (float(c) / n if n else float("nan")) for k, c in zip(self.ks, self.correct)}


class ConfusionMatrix:
    """Semantic-segmentation confusion matrix (rows: target, columns: prediction) over a whole set.

    update(pred B x H x W class ids (or logits B x C x H x W), target B x H x W with ``ignore_index`` pixels).
    Target ids outside [0, num_classes) other than the ignore index are an error: they would silently count as
    misses for a class that does not exist.
    """

    def __init__(self, num_classes: int, ignore_index: int = SEG_IGNORE_INDEX):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.float64)

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if pred.dim() == target.dim() + 1:
            pred = pred.argmax(dim=1)
        if pred.shape != target.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        pred, target = pred.flatten().cpu().long(), target.flatten().cpu().long()
        keep = target != self.ignore_index
        pred, target = pred[keep], target[keep]
        if target.numel() and (target.min() < 0 or target.max() >= self.num_classes):
            raise ValueError(f"target ids must be in [0, {self.num_classes}) or {self.ignore_index}; found "
                             f"{int(target.min())}..{int(target.max())}")
        index = target * self.num_classes + pred.clamp(0, self.num_classes - 1)
        self.matrix += torch.bincount(index, minlength=self.num_classes**2).view(self.num_classes, -1).double()

    def sums(self) -> torch.Tensor:
        return self.matrix.flatten()

    def load_sums(self, sums: torch.Tensor) -> None:
        self.matrix = sums.clone().double().view(self.num_classes, self.num_classes)

    def iou_per_class(self) -> torch.Tensor:
        """IoU of each class (NaN where the class never occurs in target or prediction)."""
        tp = self.matrix.diag()
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))

    def compute(self) -> dict[str, float]:
        iou = self.iou_per_class()
        present = ~iou.isnan()
        total = float(self.matrix.sum())
        return {
            "miou": float(iou[present].mean()) if present.any() else float("nan"),
            "pixel_acc": float(self.matrix.diag().sum()) / total if total else float("nan"),
        }


class DepthMetrics:
    """delta_1/2/3, abs rel and RMSE on valid pixels. update(pred B x 1 x H x W metres, target same, valid bool).

    Pixels count when ``valid`` is true and the target is > 0 (zero depth means "no measurement").
    """

    PROTOCOLS = ("standard", "multimae")

    def __init__(self, protocol: str = "standard"):
        if protocol not in self.PROTOCOLS:
            raise ValueError(f"unknown depth protocol '{protocol}'; choose from {self.PROTOCOLS}")
        self.protocol = protocol
        # standard: [n, delta1, delta2, delta3, sum abs rel, sum sq err]; multimae: the same per-batch means summed,
        # and the batch count in place of n.
        self.acc = torch.zeros(6, dtype=torch.float64)

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        pred, target = pred.detach().double().cpu(), target.detach().double().cpu()
        mask = target > 0
        if valid is not None:
            mask &= valid.cpu().bool()
        p, t = pred[mask], target[mask]
        if t.numel() == 0:
            return
        # A prediction of 0 or below is infinitely far off in ratio; clamp so it counts as a miss, not as NaN.
        p_pos = p.clamp_min(1e-6)
        ratio = torch.maximum(p_pos / t, t / p_pos)
        sums = torch.stack([
            torch.tensor(float(t.numel()), dtype=torch.float64),
            (ratio < 1.25).sum().double(), (ratio < 1.25**2).sum().double(), (ratio < 1.25**3).sum().double(),
            ((p - t).abs() / t).sum(), ((p - t) ** 2).sum(),
        ])
        if self.protocol == "standard":
            self.acc += sums
        else:
            n = sums[0]
            per_batch = sums / n
            per_batch[0] = 1.0
            per_batch[5] = torch.sqrt(sums[5] / n)  # the MultiMAE script averages per-batch RMSEs
            self.acc += per_batch

    def sums(self) -> torch.Tensor:
        return self.acc

    def load_sums(self, sums: torch.Tensor) -> None:
        self.acc = sums.clone().double()

    def compute(self) -> dict[str, float]:
        n = float(self.acc[0])
        if not n:
            nan = float("nan")
            return {"delta1": nan, "delta2": nan, "delta3": nan, "abs_rel": nan, "rmse": nan}
        rmse = (self.acc[5] / n).sqrt() if self.protocol == "standard" else self.acc[5] / n
        return {"delta1": float(self.acc[1] / n), "delta2": float(self.acc[2] / n), "delta3": float(self.acc[3] / n),
                "abs_rel": float(self.acc[4] / n), "rmse": float(rmse)}
