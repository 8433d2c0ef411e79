"""Semantic segmentation (``task.kind=semseg``): the NYUv2 segmentation task of the paper's Table 3.

A ConvNeXt adapter head (models/heads/convnext_seg.py) on the tokens of ``head.main_tasks``, joint image/label
transforms, cross-entropy ignoring label 255, mIoU and pixel accuracy over the whole set; the trivial baseline is
the majority pixel class.
"""

from . import TASK_KINDS
from .kind import TaskKind


@TASK_KINDS.register()
class SemanticSegmentation(TaskKind):
    name = "semseg"
    description = "semantic segmentation"
    main_metric = "miou"
    metrics = ("miou", "pixel_acc")
    losses = ("cross_entropy",)
    head = "semseg"
    has_classes = True
    baseline = "majority class"

    @classmethod
    def config_problems(cls, cfg):
        if cfg.task.num_classes is None:
            yield "task.num_classes", None, "a segmentation task needs its class count (NYUv2: 40)"

    def head_options(self, num_classes, patch_size):
        h = self.task.head
        # Default: an H/4 x W/4 feature map, as the reference's 16 predictions per 16-pixel patch.
        ppp = h.preds_per_patch or max(1, (patch_size // 4) ** 2)
        return dict(num_classes=num_classes, embed_dim=h.embed_dim, preds_per_patch=ppp, depth=h.depth,
                    main_tasks=tuple(h.main_tasks))

    def transform(self, *, train, size):
        from ...data.downstream.transforms import DenseTransform

        return DenseTransform(train=train, size=size, target="semseg", in_domains=self.task.in_domains,
                              augment=self.task.augment)

    def loss(self, mixup):
        from ..losses import segmentation_loss

        return segmentation_loss

    def metric(self, num_classes):
        from ...metrics import ConfusionMatrix

        return ConfusionMatrix(num_classes)

    def update_metric(self, metric, output, batch):
        metric.update(output.argmax(1), batch["target"])

    def baseline_statistics(self, num_classes):
        from ..baselines import MajorityClass

        return MajorityClass(num_classes)
