"""The interface of a pretraining dataset kind and its registry: a kind is one module of this package (or of the
user's ``extensions``) whose class carries ``@PRETRAIN_DATASETS.register()``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ....registry import Registry

if TYPE_CHECKING:
    from ..source import SampleSource


class PretrainDataset:
    """How one kind of pretraining dataset is found and read.

    ``takes_root``: the data lives at ``data.root``, which the config checks then require (with ``missing_root``
    as the advice); False: the kind finds or makes its data itself, and a ``data.root`` given anyway is refused
    (with ``unexpected_root``). ``description``: one line for people choosing a dataset.
    """

    name: str = ""
    description: str = ""
    takes_root: bool = True
    missing_root: str = "set data.root=/path/to/dataset"
    unexpected_root: str = "this dataset is not read from a folder; remove data.root"

    def root(self, cfg) -> Path:
        """Where the data is. Runs once per run, on the main process (the other ranks receive the path): a kind
        that generates its data writes it here. Default: ``data.root``."""
        return Path(cfg.data.root).expanduser()

    def folder(self, root: Path, split: str, modalities: list[str], cfg) -> SampleSource:
        """The split ``split`` (``data.train_split``, ``data.val_split``) under ``root`` with the given modalities
        (rgb, depth, semseg: what the model reads and reconstructs). Default: the pretraining folder layout
        ``<root>/<split>/<modality>/<class>/<stem>.<ext>`` (folder.py)."""
        from ..folder import MultiModalFolder

        return MultiModalFolder(root, split, modalities, skip_bad_samples=cfg.data.skip_bad_samples,
                                semseg_num_classes=cfg.model.semseg_num_classes)


PRETRAIN_DATASETS: Registry[type[PretrainDataset]] = Registry("pretraining dataset", "data.name", __package__)


def pretrain_dataset(cfg) -> PretrainDataset:
    """The kind ``data.name`` names (a one-line ConfigError listing the registered ones if none does)."""
    return PRETRAIN_DATASETS.get(cfg.data.name)()
