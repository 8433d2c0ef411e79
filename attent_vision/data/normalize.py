"""Per-modality normalisation shared by pretraining and fine-tuning: ImageNet statistics for rgb, robust
standardisation for depth (MultiMAE's depth input and target)."""

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def robust_standardize_depth(depth: torch.Tensor, valid: torch.Tensor | None = None, trim: float = 0.1) -> torch.Tensor:
    """Standardise a depth map by the mean and unbiased variance of its values between the 10% and 90% ranks.

    depth: 1 x H x W float; valid: optional bool mask of the same shape (invalid pixels are ignored and set to the
    mean). Returns (depth - mean) / sqrt(var + 1e-6), 1 x H x W. This is MultiMAE's input and target for depth.
    """
    values = depth[valid] if valid is not None else depth.flatten()
    values = values.sort().values
    n = values.numel()
    kept = values[int(trim * n) : int((1 - trim) * n)]
    if kept.numel() < 2:
        kept = values if n >= 2 else torch.zeros(2, dtype=depth.dtype)
    mean, var = kept.mean(), kept.var()
    out = (depth - mean) / torch.sqrt(var + 1e-6)
    if valid is not None:
        out = torch.where(valid, out, torch.zeros_like(out))
    return out
