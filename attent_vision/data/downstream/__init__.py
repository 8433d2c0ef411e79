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

from ...lazy_exports import lazy_exports

NYUV2_NUM_CLASSES = 40

# Imported on first use: the fine-tuning config schema reads SyntheticDownstreamSettings without importing torch.
__getattr__, __dir__ = lazy_exports(__name__, {
    "SyntheticDownstreamSettings": ".embedded", "ensure_synthetic_downstream": ".embedded",
    "IMAGENET_S50_ENV": ".imagenet_s", "IGNORE_INDEX": ".imagenet_s", "ImageNetS50Classification": ".imagenet_s",
    "ImageNetS50Segmentation": ".imagenet_s", "decode_imagenet_s_mask": ".imagenet_s",
    "BadSampleLog": "..skipping", "collate_skipping_bad": "..skipping", "downstream_datasets": ".datasets",
    "DEPTH_SCALE": ".nyuv2", "NYUV2_ENV": ".nyuv2", "NYUv2": ".nyuv2",
})
__all__ = sorted([*__dir__(), "NYUV2_NUM_CLASSES"])
