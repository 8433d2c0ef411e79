"""``data=folder`` (and ``data=imagenet_s50``): any folder in the pretraining layout, at ``data.root``."""

from .base import PRETRAIN_DATASETS, PretrainDataset


@PRETRAIN_DATASETS.register()
class FolderDataset(PretrainDataset):
    name = "folder"
    description = "a folder in the pretraining layout: <data.root>/<split>/{rgb,depth,semseg}/<class>/<stem>.<ext>"
    takes_root = True
    missing_root = "set data.root=/path/to/dataset (the folder holding <split>/<modality>/<class>/...)"
