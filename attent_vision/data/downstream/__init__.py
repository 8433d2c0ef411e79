"""The fine-tuning datasets (ImageNet-S50, NYUv2 and their embedded stand-ins), their transforms, and the
function that picks the datasets of a task (``downstream_datasets``). Preparation command: ``prepare_nyuv2``.

- :class:`ImageNetS50Classification`: {'image': uint8 3 x H x W, 'label': int}
- :class:`ImageNetS50Segmentation`: {'image': uint8 3 x H x W, 'semseg': int64 H x W, 0..50, 255 ignore}
- :class:`NYUv2`: {'rgb', 'depth' (metres), 'semseg' (0..39, 255 ignore), 'valid'} for the requested modalities
- :func:`ensure_synthetic_downstream`: the embedded stand-ins for both, in the same layouts

Roots come from the argument, else from ``$IMAGENET_S50_ROOT`` / ``$NYUV2_ROOT``. All errors about the data are
:class:`~attent_vision.errors.DataError` with one actionable line. ``skip_bad_samples=True`` (keyword) makes a
sample that fails to load come back as ``{'index', 'bad'}``; batch with :func:`collate_skipping_bad` and count
with :class:`BadSampleLog`.
"""

from .embedded import SyntheticDownstreamSettings, ensure_synthetic_downstream
from .imagenet_s import (
    IMAGENET_S50_ENV,
    IGNORE_INDEX,
    ImageNetS50Classification,
    ImageNetS50Segmentation,
    decode_imagenet_s_mask,
)
from ..skipping import BadSampleLog, collate_skipping_bad
from .datasets import downstream_datasets
from .nyuv2 import DEPTH_SCALE, NYUV2_ENV, NYUv2

NYUV2_NUM_CLASSES = 40

__all__ = [
    "IMAGENET_S50_ENV",
    "NYUV2_ENV",
    "IGNORE_INDEX",
    "DEPTH_SCALE",
    "NYUV2_NUM_CLASSES",
    "ImageNetS50Classification",
    "ImageNetS50Segmentation",
    "NYUv2",
    "SyntheticDownstreamSettings",
    "ensure_synthetic_downstream",
    "decode_imagenet_s_mask",
    "downstream_datasets",
    "BadSampleLog",
    "collate_skipping_bad",
]
