"""The one function that turns the fine-tuning ``data`` config (schema: config/downstream_data.py) into the
datasets of a task.

Which dataset serves which task:

    name          cls (classification)             semseg                              depth
    synthetic     ImageNet-S50-like train/val      NYUv2-like train/test               NYUv2-like train/test
    imagenet_s50  train / validation               train-semi / validation (masks)     -
    nyuv2         -                                train / test                        train / test
"""

from pathlib import Path

from omegaconf import OmegaConf
from torch.utils.data import Dataset

from ...errors import ConfigError
from .embedded import ensure_synthetic_downstream
from .imagenet_s import ImageNetS50Classification, ImageNetS50Segmentation
from .nyuv2 import NYUv2

TASK_ALIASES = {"cls": "cls", "classification": "cls", "semseg": "semseg", "segmentation": "semseg", "depth": "depth"}
DATASETS = ("synthetic", "imagenet_s50", "nyuv2")
# (train split, evaluation split) per (dataset, task)
DEFAULT_SPLITS = {
    ("imagenet_s50", "cls"): ("train", "validation"),
    ("imagenet_s50", "semseg"): ("train-semi", "validation"),
    ("nyuv2", "semseg"): ("train", "test"),
    ("nyuv2", "depth"): ("train", "test"),
}


def _task(task: str) -> str:
    if task not in TASK_ALIASES:
        raise ConfigError(f"unknown fine-tuning task '{task}'; choose from cls, semseg, depth")
    return TASK_ALIASES[task]


def downstream_datasets(data, task: str) -> tuple[Dataset, Dataset]:
    """(train, eval) datasets of ``data`` (a DownstreamDataConfig or DictConfig) for ``task`` (cls, semseg, depth).

    Items are the datasets' raw items (uint8 images, int64 labels, depth in metres); the fine-tuning loop applies
    its own transforms. Raises ConfigError for a dataset that does not serve the task, DataError for bad folders.
    """
    task = _task(task)
    name = data.name
    if name not in DATASETS:
        raise ConfigError(f"config key data.name={name!r} is invalid: choose one of {list(DATASETS)}")
    skip = bool(data.skip_bad_samples)
    root: Path | str | None = data.root
    if name == "synthetic":
        settings = OmegaConf.to_container(OmegaConf.create(data.synthetic))  # a dataclass or a DictConfig
        base = ensure_synthetic_downstream(getattr(data, "cache_dir", None), **settings)
        if task == "cls":
            name, root, splits = "imagenet_s50", base / "ImageNetS50", ("train", "validation")
        else:
            name, root, splits = "nyuv2", base / "nyuv2", ("train", "test")
    else:
        if (name, task) not in DEFAULT_SPLITS:
            served = sorted(t for n, t in DEFAULT_SPLITS if n == name)
            raise ConfigError(f"data.name={name} has no '{task}' labels (it serves {served}); pick another data= "
                              "config or task")
        splits = DEFAULT_SPLITS[(name, task)]
    train_split = data.train_split or splits[0]
    eval_split = data.eval_split or splits[1]
    if name == "imagenet_s50":
        cls = ImageNetS50Classification if task == "cls" else ImageNetS50Segmentation
        return cls(root, train_split, skip_bad_samples=skip), cls(root, eval_split, skip_bad_samples=skip)
    modalities = ["rgb", task]
    return (NYUv2(root, train_split, modalities, skip_bad_samples=skip),
            NYUv2(root, eval_split, modalities, skip_bad_samples=skip))

