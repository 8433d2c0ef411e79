"""The interface of a downstream task kind (registered in ``TASK_KINDS``, task_kinds/__init__.py).

Class attributes are traits: the config checks (config/finetune.py), the named tasks' main metric
(config/downstream_tasks.py) and the trainer read them without building anything. An instance is the kind bound to
one task config (``cfg.task``, schema ``TaskConfig``) and builds the pieces the fine-tuning stage runs; the methods
import torch inside, so that reading traits stays light (``--help`` and config errors import no torch).
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterator


class TaskKind:
    """One kind of downstream task. Subclass, set the traits, implement the builders, register:

        @TASK_KINDS.register()
        class MyKind(TaskKind):
            name = "my_kind"
            ...

    The stage's contract with a kind, per batch: the transform's items hold the model inputs (``rgb``, ...),
    ``target`` and optionally ``valid``; the model's output for the kind is ``outputs[kind.head]``; the loss gets
    (output as float32, target, valid or None) and returns a scalar (a batch mean); the metric accumulates whole-set
    sums (see metrics.py: ``update``, ``sums``, ``load_sums``, ``compute``) and ``compute`` returns
    {metric name: value}, which results.json records as ``val_<name>``."""

    name: ClassVar[str] = ""  # the task.kind value
    description: ClassVar[str] = ""  # what it is, in words (logs, messages)
    main_metric: ClassVar[str] = ""  # picks the best epoch and is the report's number (val_<main_metric>)
    maximize: ClassVar[bool] = True  # whether a higher main metric is better
    metrics: ClassVar[tuple[str, ...]] = ()  # every metric its evaluation reports
    losses: ClassVar[tuple[str, ...]] = ()  # the task.loss values it takes
    head: ClassVar[str] = ""  # the MultiViT head it trains (models/multivit.py HEAD_TYPES), whose output it reads
    has_classes: ClassVar[bool] = False  # predicts classes: task.num_classes is their count
    class_count_from_data: ClassVar[bool] = False  # the dataset's class count rules (null takes it, another is refused)
    mixup: ClassVar[bool] = False  # timm mixup/cutmix apply (task.mixup)
    uses_depth_protocol: ClassVar[bool] = False  # task.depth_protocol matters (recorded in results.json's setting)
    baseline: ClassVar[str] = ""  # the trivial baseline, in words ("majority class")

    def __init__(self, task: Any):
        self.task = task  # the task config: loss, label_smoothing, head, augment, in_domains, ...

    # ------------------------------------------------------------------------------------ config (no torch)
    @classmethod
    def config_problems(cls, cfg: Any) -> Iterator[tuple[str, Any, str]]:
        """(key, value, rule) for each setting of ``cfg`` (the whole fine-tuning config) this kind refuses, beyond
        the checks every kind gets from its traits (loss, num_classes, mixup)."""
        return iter(())

    # --------------------------------------------------------------------------------------------- builders
    def head_options(self, num_classes: int | None, patch_size: int) -> dict:
        """Keyword arguments of the ``head`` (MultiViT's ``heads={kind.head: options}``)."""
        raise NotImplementedError

    def transform(self, *, train: bool, size: int):
        """raw dataset item -> {model inputs..., 'target', ['valid']} (``train``: augmented; else the evaluation
        view); ``size``: the model's image side."""
        raise NotImplementedError

    def loss(self, mixup: bool):
        """callable(output float32, target, valid or None) -> scalar loss (``mixup``: targets are soft, B x C)."""
        raise NotImplementedError

    def metric(self, num_classes: int | None):
        """A fresh whole-set accumulator (metrics.py)."""
        raise NotImplementedError

    def update_metric(self, metric, output, batch: dict) -> None:
        """Add one evaluation batch (``output``: the head's output as float32)."""
        metric.update(output, batch["target"])

    def baseline_statistics(self, num_classes: int | None):
        """What the trivial baseline learns from the first epoch's targets: an object with ``sums`` (a float64
        tensor, summed over ranks and checkpointed), ``update(batch)``, ``constant()`` (None before any data) and
        ``prediction(constant, output)`` (an output-shaped prediction that always says the constant)."""
        raise NotImplementedError
