"""Pretraining dataset kinds (config key ``data.name``), one file each, behind one interface (base.py):

    synthetic   the embedded default: generated once into the data cache, read back as a folder (the default)
    folder      any folder in the pretraining layout, at ``data.root`` (also data=imagenet_s50)

A new kind is one module here (or in the user's ``extensions``) whose class carries
``@PRETRAIN_DATASETS.register()``; it says whether it reads ``data.root``, where its data is (``root``) and how a
split is read (``folder``: a SampleSource, ../source.py). These modules import torch only inside functions: the
config checks read the registered names and traits without it.
"""

from .base import PRETRAIN_DATASETS, PretrainDataset, pretrain_dataset

__all__ = ["PRETRAIN_DATASETS", "PretrainDataset", "pretrain_dataset"]
