"""The fine-tuning datasets of a config, checked against what the task's kind needs, seen through its transforms."""

import logging

from ..data.downstream.datasets import downstream_datasets
from ..data.downstream.transforms import TransformedDataset
from ..errors import ConfigError, DataError
from .task_kinds import TASK_KINDS, TaskKind

log = logging.getLogger(__name__)


def num_classes_of(dataset, kind: TaskKind, configured: int | None) -> int | None:
    """Class count of a kind that has classes: the configured one (checked against the dataset's when the kind
    takes it from the data, e.g. ImageNet-S50's class folders), or the dataset's when not configured; None for a
    kind without classes."""
    if not kind.has_classes:
        return None
    found = getattr(dataset, "num_classes", None)
    if configured is None:
        if found is None:
            raise ConfigError(f"config key task.num_classes=None is invalid: {type(dataset).__name__} does not say "
                              "how many classes it has; set task.num_classes")
        return int(found)
    if kind.class_count_from_data and found is not None and found != configured:
        raise DataError(f"task.num_classes={configured} but {getattr(dataset, 'split_dir', 'the dataset')} has "
                        f"{found} class folders; point data.root at the full dataset, or set task.num_classes=null to "
                        "use the folders found")
    return configured


def build_finetune_datasets(cfg, kind: TaskKind | None = None):
    """(train, eval, num_classes): transformed datasets for ``cfg.task`` on ``cfg.data`` (``kind``: the registered
    kind bound to ``cfg.task``; looked up when not given)."""
    t = cfg.task
    kind = kind or TASK_KINDS.get(t.kind)(t)
    train_raw, eval_raw = downstream_datasets(cfg.data, t.kind, inputs=t.in_domains)
    num_classes = num_classes_of(train_raw, kind, t.num_classes)
    size = cfg.model.image_size
    log.info("data %s: %d training and %d evaluation samples%s", cfg.data.name, len(train_raw), len(eval_raw),
             f", {num_classes} classes" if num_classes else "")
    train = TransformedDataset(train_raw, kind.transform(train=True, size=size), seed=cfg.trainer.seed, randomized=True)
    return train, TransformedDataset(eval_raw, kind.transform(train=False, size=size)), num_classes
