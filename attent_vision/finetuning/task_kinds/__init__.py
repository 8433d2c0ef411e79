"""Downstream task kinds (config key ``task.kind``): what a kind of fine-tuning task is, one module each.

    classification.py   cls: ImageNet-S50-style image classification (top-1/top-5, majority-class baseline)
    semseg.py           semseg: semantic segmentation (mIoU, pixel accuracy, majority-pixel baseline)
    depth.py            depth: monocular depth estimation (delta_1..3, abs rel, RMSE, constant-depth baseline)

A kind is a :class:`TaskKind` subclass registered with ``@TASK_KINDS.register()``: its class attributes are the
traits the config checks read without torch (main metric, losses, whether it has classes or takes mixup), its
methods build what the fine-tuning stage runs (head options, transforms, loss, metric, trivial baseline) for one
task config. A new kind is one module here, or one module of yours named in ``extensions=[...]``.
"""

from ...registry import Registry
from .kind import TaskKind

TASK_KINDS: Registry[type[TaskKind]] = Registry("downstream task kind", "task.kind", __name__)

__all__ = ["TASK_KINDS", "TaskKind"]
