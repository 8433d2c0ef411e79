"""The downstream datasets (config key ``data.name``), one module each, and the one function that turns the
fine-tuning ``data`` config (schema: config/downstream_data.py) into the datasets of a task.

    synthetic.py      the embedded stand-ins: ImageNet-S50-like (cls) and NYUv2-like (semseg, depth)
    imagenet_s50.py   ImageNet-S50: cls (train / validation), semseg (train-semi / validation, masks)
    nyuv2.py          NYUv2: semseg and depth (train / test)

A dataset is a :class:`DownstreamDataset` registered with ``DOWNSTREAM_DATASETS.add(name, entry)``: the task kinds it
serves (``task.kind`` names) with their default (train, eval) splits, and ``read``, which opens the two splits for
a :class:`ReadRequest`. The modules import their readers inside ``read``, so that the config checks list and look
up datasets without importing torch. A new dataset is one module here, or one module of yours named in
``extensions=[...]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ....errors import ConfigError, DataError
from ....registry import Registry


@dataclass(frozen=True)
class ReadRequest:
    """What ``DownstreamDataset.read`` opens: ``kind`` (a task.kind name the dataset serves), the splits (the
    config's, else the dataset's defaults for the kind), ``inputs`` (the model's input modalities, rgb first:
    the items must hold them) and the ``data`` config itself (root, cache_dir, skip_bad_samples, ...)."""

    data: Any
    kind: str
    root: str | Path | None
    train_split: str
    eval_split: str
    inputs: tuple[str, ...] = ("rgb",)

    @property
    def skip_bad_samples(self) -> bool:
        return bool(self.data.skip_bad_samples)

    def rgb_only(self) -> None:
        """For datasets whose images are all they have: a DataError when other inputs are asked for."""
        extra = [d for d in self.inputs if d != "rgb"]
        if extra:
            raise DataError(f"task.in_domains={list(self.inputs)} needs {extra} but data.name={self.data.name} "
                            "provides rgb only; use task.in_domains=[rgb] or NYUv2 data")


@dataclass(frozen=True)
class DownstreamDataset:
    """A registered downstream dataset.

    splits: {task.kind name: (train split, eval split) by default} for each kind it has labels for.
    read: ReadRequest -> (train, eval) datasets of raw items (uint8 images; labels, masks or depth in metres), which
        the task kind's transforms turn into model inputs and targets.
    description: what it is, in words.
    reads_root: whether it is read from ``data.root`` (False: generated, ``data.root`` must stay null)."""

    splits: Mapping[str, tuple[str, str]]
    read: Callable[[ReadRequest], tuple[Any, Any]]
    description: str = ""
    reads_root: bool = True


DOWNSTREAM_DATASETS: Registry[DownstreamDataset] = Registry("downstream dataset", "data.name", __name__)


def downstream_datasets(data, kind: str, inputs=("rgb",)) -> tuple[Any, Any]:
    """(train, eval) datasets of ``data`` (a DownstreamDataConfig or DictConfig) for the task kind named ``kind``,
    whose items hold the ``inputs`` modalities.

    Items are the datasets' raw items (uint8 images, int64 labels, depth in metres); the fine-tuning loop applies
    the kind's transforms. Raises ConfigError for an unknown dataset or one that does not serve the kind, DataError
    for bad folders.
    """
    dataset = DOWNSTREAM_DATASETS.get(data.name)
    if kind not in dataset.splits:
        raise ConfigError(f"data.name={data.name} has no '{kind}' labels (it serves {sorted(dataset.splits)}); pick "
                          "another data= config or task")
    train_split, eval_split = dataset.splits[kind]
    request = ReadRequest(data, kind, data.root, data.train_split or train_split, data.eval_split or eval_split,
                          tuple(inputs))
    return dataset.read(request)


__all__ = ["DOWNSTREAM_DATASETS", "DownstreamDataset", "ReadRequest", "downstream_datasets"]
