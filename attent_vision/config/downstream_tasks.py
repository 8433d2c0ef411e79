"""The downstream tasks: the one list that the pretraining config (``downstream.tasks``), the fine-tuning suite,
the report and the benchmarks read. A new task gets a line here and a ``conf/finetune/task/<name>.yaml``; what
its kind measures (the main metric) comes from the task kind (finetuning/task_kinds/)."""

from dataclasses import dataclass

from ..finetuning.task_kinds import TASK_KINDS


@dataclass(frozen=True)
class DownstreamTask:
    kind: str  # a registered task kind (task.kind): cls, semseg, depth, ...
    column: str  # its column in reports (the paper's Table 3 names)

    @property
    def metric(self) -> str:
        """The main metric's key in a fine-tuning run's ``final`` and ``best`` records (the kind's main metric)."""
        return f"val_{TASK_KINDS.get(self.kind).main_metric}"


DOWNSTREAM_TASKS = {
    "imagenet_s50_cls": DownstreamTask("cls", "ImageNetS50 top1"),
    "nyuv2_seg": DownstreamTask("semseg", "NYUv2 mIoU"),
    "nyuv2_depth": DownstreamTask("depth", "NYUv2 delta1"),
}
