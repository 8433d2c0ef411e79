"""A downstream task kind and a dataset that live outside the package, each registered through its registry alone
(tests/test_extension_points.py runs ``finetune.py extensions=[toys.downstream] ...`` with them).

The kind regresses an image's mean brightness: the classification head with one output is the regressor, the loss
is the squared error, the metrics are the mean absolute and root-mean-square errors (lower is better), and the
trivial baseline predicts the training images' mean brightness. The dataset renders grey images of random levels
with pixel noise, in memory, one seed per split.
"""

import torch
import torch.nn.functional as F

from attent_vision.data.downstream.datasets import DOWNSTREAM_DATASETS, DownstreamDataset
from attent_vision.data.downstream.transforms import normalize_rgb
from attent_vision.finetuning.task_kinds import TASK_KINDS, TaskKind

SPLIT_SEEDS = {"train": 0, "eval": 1}


class GreyImages(torch.utils.data.Dataset):
    """``count`` images {'image': uint8 3 x 32 x 32}: a random grey level per image plus uniform pixel noise."""

    def __init__(self, count: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        level = torch.rand(count, 1, 1, 1, generator=g)
        noise = (torch.rand(count, 3, 32, 32, generator=g) - 0.5) * 0.2
        self.images = ((level + noise).clamp(0, 1) * 255).round().to(torch.uint8)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.images[index]}


def read_grey_images(request):
    request.rgb_only()
    return GreyImages(128, SPLIT_SEEDS[request.train_split]), GreyImages(64, SPLIT_SEEDS[request.eval_split])


DOWNSTREAM_DATASETS.add("toy_brightness", DownstreamDataset(
    splits={"mean_brightness": ("train", "eval")}, read=read_grey_images,
    description="grey images of random brightness, generated in memory", reads_root=False))


class BrightnessTransform:
    """{'image'} -> {'rgb': ImageNet-normalised 3 x S x S, 'target': mean brightness in [0, 1] (float32)}."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, item: dict) -> dict:
        image = item["image"]
        rgb = F.interpolate(image[None].float(), size=(self.size, self.size), mode="bilinear")[0].to(torch.uint8)
        return {"rgb": normalize_rgb(rgb), "target": image.float().mean() / 255}


class AbsoluteError:
    """Whole-set accumulator (metrics.py's interface): sums of |error|, error^2 and the count."""

    def __init__(self):
        self.totals = torch.zeros(3, dtype=torch.float64)

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        error = (output[:, 0].double() - target.double()).cpu()
        self.totals += torch.stack([error.abs().sum(), (error**2).sum(), torch.tensor(float(len(error)))])

    def sums(self) -> torch.Tensor:
        return self.totals

    def load_sums(self, sums: torch.Tensor) -> None:
        self.totals = sums.clone().double()

    def compute(self) -> dict[str, float]:
        n = float(self.totals[2])
        return {"mae": float(self.totals[0]) / n, "rmse": (float(self.totals[1]) / n) ** 0.5}


class MeanTarget:
    """The trivial baseline: the mean training brightness, predicted for every image."""

    def __init__(self):
        self.sums = torch.zeros(2, dtype=torch.float64)

    def update(self, batch: dict) -> None:
        target = batch["target"].cpu().double()
        self.sums += torch.stack([target.sum(), torch.tensor(float(len(target)), dtype=torch.float64)])

    def constant(self) -> float | None:
        return float(self.sums[0] / self.sums[1]) if self.sums[1] > 0 else None

    @staticmethod
    def prediction(constant: float, output: torch.Tensor) -> torch.Tensor:
        return torch.full_like(output, constant)


@TASK_KINDS.register()
class MeanBrightness(TaskKind):
    name = "mean_brightness"
    description = "mean-brightness regression"
    main_metric = "mae"
    maximize = False  # an error: the best epoch has the lowest
    metrics = ("mae", "rmse")
    losses = ("mse",)
    head = "cls"  # mean-pooled LayerNorm + linear: with one output, a regressor
    baseline = "mean brightness"

    def head_options(self, num_classes, patch_size):
        return dict(num_classes=1, mean_pooling=True, init_scale=1.0)

    def transform(self, *, train, size):
        return BrightnessTransform(size)

    def loss(self, mixup):
        return lambda output, target, valid=None: F.mse_loss(output[:, 0], target)

    def metric(self, num_classes):
        return AbsoluteError()

    def baseline_statistics(self, num_classes):
        return MeanTarget()
