"""Image classification (``task.kind=cls``): the ImageNet-S50 task of the paper's Table 3.

A mean-pooled linear head (models/heads/cls.py) on the encoder's tokens, timm's ImageNet transforms, cross-entropy
(label smoothing, mixup/cutmix), top-1/top-5 accuracy; the trivial baseline is the majority class.
"""

from . import TASK_KINDS
from .kind import TaskKind


@TASK_KINDS.register()
class Classification(TaskKind):
    name = "cls"
    description = "image classification"
    main_metric = "top1"
    metrics = ("top1", "top5")
    losses = ("cross_entropy",)
    head = "cls"
    has_classes = True
    class_count_from_data = True  # the class folders found are the classes
    mixup = True
    baseline = "majority class"

    @classmethod
    def config_problems(cls, cfg):
        if list(cfg.task.in_domains) != ["rgb"]:
            yield "task.in_domains", list(cfg.task.in_domains), "classification data (ImageNet-S50) has rgb only"

    def head_options(self, num_classes, patch_size):
        h = self.task.head
        return dict(num_classes=num_classes, mean_pooling=h.mean_pooling, init_scale=h.init_scale)

    def transform(self, *, train, size):
        from ...data.downstream.transforms import ClassificationTransform

        return ClassificationTransform(train=train, size=size, augment=self.task.augment)

    def loss(self, mixup):
        from ..losses import ClassificationLoss

        return ClassificationLoss(self.task.label_smoothing, mixup=mixup)

    def metric(self, num_classes):
        from ...metrics import TopKAccuracy

        return TopKAccuracy((1, 5))

    def baseline_statistics(self, num_classes):
        from ..baselines import MajorityClass

        return MajorityClass(num_classes)
