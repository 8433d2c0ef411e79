"""Monocular depth estimation (``task.kind=depth``): the NYUv2 depth task of the paper's Table 3.

A DPT head (models/heads/dpt.py) reading four encoder blocks, joint image/depth transforms, a masked BerHu or L1
loss on the valid pixels, delta_1..3, abs rel and RMSE (``task.depth_protocol``); the trivial baseline predicts one
depth everywhere, the geometric mean of the valid training depths.
"""

from . import TASK_KINDS
from .kind import TaskKind


@TASK_KINDS.register()
class DepthEstimation(TaskKind):
    name = "depth"
    description = "depth estimation"
    main_metric = "delta1"
    metrics = ("delta1", "delta2", "delta3", "abs_rel", "rmse")
    losses = ("berhu", "l1")
    head = "depth"
    uses_depth_protocol = True
    baseline = "constant depth"

    @classmethod
    def config_problems(cls, cfg):
        if "depth" in cfg.task.in_domains:
            yield "task.in_domains", list(cfg.task.in_domains), "depth estimation cannot take depth as an input"

    def head_options(self, num_classes, patch_size):
        h = self.task.head
        return dict(num_channels=1, hooks=list(h.hooks) if h.hooks else None,
                    layer_dims=list(h.layer_dims) if h.layer_dims else None, feature_dim=h.feature_dim,
                    main_tasks=tuple(h.main_tasks))

    def transform(self, *, train, size):
        from ...data.downstream.transforms import DenseTransform

        return DenseTransform(train=train, size=size, target="depth", in_domains=self.task.in_domains,
                              augment=self.task.augment, valid_mask=True)

    def loss(self, mixup):
        from ..losses import masked_berhu, masked_l1

        return {"berhu": masked_berhu, "l1": masked_l1}[self.task.loss]

    def metric(self, num_classes):
        from ...metrics import DepthMetrics

        return DepthMetrics(self.task.depth_protocol)

    def update_metric(self, metric, output, batch):
        metric.update(output, batch["target"], batch["valid"])

    def baseline_statistics(self, num_classes):
        from ..baselines import ConstantDepth

        return ConstantDepth()
