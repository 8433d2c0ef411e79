"""The fine-tuning datasets of a config, checked against what the task needs, seen through the task's transforms."""

import logging

from ..data.downstream.datasets import downstream_datasets
from ..data.downstream.nyuv2 import NYUv2
from ..data.downstream.transforms import TransformedDataset, build_transform
from ..errors import ConfigError, DataError

log = logging.getLogger(__name__)


def _with_inputs(dataset, in_domains, kind, data_name):
    """Reopen a NYUv2 split with the extra input modalities (rgb-depth segmentation); other datasets have rgb only."""
    extra = [d for d in in_domains if d != "rgb"]
    if not extra:
        return dataset
    if not isinstance(dataset, NYUv2):
        raise DataError(f"task.in_domains={list(in_domains)} needs {extra} but data.name={data_name} provides rgb "
                        "only; use task.in_domains=[rgb] or NYUv2 data")
    return NYUv2(dataset.root, dataset.split, ["rgb", kind, *extra], skip_bad_samples=dataset.skip_bad_samples)


def num_classes_of(dataset, kind: str, configured: int | None) -> int | None:
    """Class count: the configured one, checked against the dataset's (ImageNet-S50: len(classes)); or the
    dataset's when not configured."""
    if kind == "depth":
        return None
    found = getattr(dataset, "num_classes", None)
    if configured is None:
        if found is None:
            raise ConfigError(f"config key task.num_classes=None is invalid: {type(dataset).__name__} does not say "
                              "how many classes it has; set task.num_classes")
        return int(found)
    if kind == "cls" and found is not None and found != configured:
        raise DataError(f"task.num_classes={configured} but {getattr(dataset, 'split_dir', 'the dataset')} has "
                        f"{found} class folders; point data.root at the full dataset, or set task.num_classes=null to "
                        "use the folders found")
    return configured


def build_finetune_datasets(cfg):
    """(train, eval, num_classes): transformed datasets for ``cfg.task`` on ``cfg.data``."""
    t = cfg.task
    train_raw, eval_raw = downstream_datasets(cfg.data, t.kind)
    train_raw = _with_inputs(train_raw, t.in_domains, t.kind, cfg.data.name)
    eval_raw = _with_inputs(eval_raw, t.in_domains, t.kind, cfg.data.name)
    num_classes = num_classes_of(train_raw, t.kind, t.num_classes)
    size = cfg.model.image_size
    make = lambda train: build_transform(train=train, kind=t.kind, size=size, in_domains=t.in_domains,  # noqa: E731
                                         augment=t.augment)
    log.info("data %s: %d training and %d evaluation samples%s", cfg.data.name, len(train_raw), len(eval_raw),
             f", {num_classes} classes" if num_classes else "")
    train = TransformedDataset(train_raw, make(True), seed=cfg.trainer.seed, randomized=True)
    return train, TransformedDataset(eval_raw, make(False)), num_classes
