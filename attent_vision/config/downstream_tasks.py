"""The downstream tasks: the one list that the pretraining config (``downstream.tasks``), the fine-tuning suite,
the report and the benchmarks read. A new task gets a line here and a ``attent_vision/conf/finetune/task/<name>.yaml``."""

from dataclasses import dataclass

# What each kind of task is ranked by (its best epoch) and reported with.
MAIN_METRIC = {"cls": "top1", "semseg": "miou", "depth": "delta1"}


@dataclass(frozen=True)
class DownstreamTask:
    kind: str  # cls | semseg | depth
    column: str  # its column in reports (the paper's Table 3 names)

    @property
    def metric(self) -> str:
        """The main metric's key in a fine-tuning run's ``final`` and ``best`` records."""
        return f"val_{MAIN_METRIC[self.kind]}"


DOWNSTREAM_TASKS = {
    "imagenet_s50_cls": DownstreamTask("cls", "ImageNetS50 top1"),
    "nyuv2_seg": DownstreamTask("semseg", "NYUv2 mIoU"),
    "nyuv2_depth": DownstreamTask("depth", "NYUv2 delta1"),
}
