"""The embedded stand-ins (``data.name=synthetic``, the default): generated once into the cache folder
(data/downstream/embedded.py, settings ``data.synthetic``) in the real layouts and read by the real datasets'
``read``: classification on the ImageNet-S50-like part (train / validation), segmentation and depth on the
NYUv2-like part (train / test). Generated, so ``data.root`` stays null (``data.cache_dir`` chooses the folder)."""

from dataclasses import replace

from . import DOWNSTREAM_DATASETS, DownstreamDataset, ReadRequest
from .imagenet_s50 import read_imagenet_s50
from .nyuv2 import read_nyuv2

# task kind -> (the real dataset's reader, its folder under the generated root)
STAND_INS = {"cls": (read_imagenet_s50, "ImageNetS50"), "semseg": (read_nyuv2, "nyuv2"),
             "depth": (read_nyuv2, "nyuv2")}


def read_synthetic(request: ReadRequest):
    from omegaconf import OmegaConf

    from ..embedded import ensure_synthetic_downstream

    data = request.data
    settings = OmegaConf.to_container(OmegaConf.create(data.synthetic))  # a dataclass or a DictConfig
    base = ensure_synthetic_downstream(getattr(data, "cache_dir", None), **settings)
    read, folder = STAND_INS[request.kind]
    return read(replace(request, root=base / folder))


DOWNSTREAM_DATASETS.add("synthetic", DownstreamDataset(
    splits={"cls": ("train", "validation"), "semseg": ("train", "test"), "depth": ("train", "test")},
    read=read_synthetic,
    description="the embedded synthetic data (ImageNet-S50-like and NYUv2-like, generated on first use)",
    reads_root=False,
))
