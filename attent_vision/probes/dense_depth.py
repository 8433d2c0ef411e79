"""A dense linear probe: depth from each patch token by one linear map (ridge regression, closed form).

Each patch token predicts the log-depth of every pixel of its patch (patch x patch outputs); the map is fitted on
training frames and scored on test frames with NYUv2's delta1 (the share of valid pixels whose predicted depth is
within a factor 1.25 of the truth) and the mean absolute relative error. Invalid pixels (holes in the sensor
depth) never count in a score; in fitting, a hole takes the mean log-depth of its patch's valid pixels (or of its
frame's), so one Gram matrix serves every output.
"""

import torch

from ..metrics import DepthMetrics
from .linear import standardise


def patch_pixels(maps: torch.Tensor, patch: int) -> torch.Tensor:
    """N x 1 x S x S -> N x P x patch^2 (P = (S / patch)^2 patches in row-major order, pixels row-major)."""
    n, _, s, _ = maps.shape
    g = s // patch
    return maps.reshape(n, g, patch, g, patch).permute(0, 1, 3, 2, 4).reshape(n, g * g, patch * patch)


def from_patch_pixels(values: torch.Tensor, patch: int) -> torch.Tensor:
    """Inverse of :func:`patch_pixels`: N x P x patch^2 -> N x 1 x S x S."""
    n, p, _ = values.shape
    g = int(round(p ** 0.5))
    return values.reshape(n, g, g, patch, patch).permute(0, 1, 3, 2, 4).reshape(n, 1, g * patch, g * patch)


def log_depth_targets(depth: torch.Tensor, valid: torch.Tensor, patch: int) -> torch.Tensor:
    """N x 1 x S x S depth (metres) and validity -> N x P x patch^2 log-depth targets, holes filled as described
    in the module docstring (float64)."""
    logd = torch.where(valid, depth.double().clamp_min(1e-6).log(), torch.zeros((), dtype=torch.float64))
    values, mask = patch_pixels(logd, patch), patch_pixels(valid.double(), patch)
    frame_mean = (logd.sum((1, 2, 3)) / valid.sum((1, 2, 3)).clamp_min(1))[:, None, None]
    patch_mean = values.sum(2, keepdim=True) / mask.sum(2, keepdim=True).clamp_min(1)
    fill = torch.where(mask.sum(2, keepdim=True) > 0, patch_mean, frame_mean)
    return torch.where(mask.bool(), values, fill)


def fit_ridge(x: torch.Tensor, y: torch.Tensor, ridge: float) -> torch.Tensor:
    """x: R x F (with a bias column), y: R x O -> coefficients F x O minimising |xB - y|^2 + ridge R |B|^2."""
    gram = x.T @ x + ridge * x.shape[0] * torch.eye(x.shape[1], dtype=x.dtype)
    return torch.linalg.solve(gram, x.T @ y)


def depth_probe(train_tokens: torch.Tensor, train_depth: torch.Tensor, train_valid: torch.Tensor,
                test_tokens: torch.Tensor, test_depth: torch.Tensor, test_valid: torch.Tensor, patch: int,
                ridge: float = 1e-2) -> dict[str, float]:
    """Patch tokens (N x P x D) and depth maps (N x 1 x S x S, metres; validity bool) of training and test
    frames -> {"delta1", "abs_rel"} of the fitted map on the test frames (NYUv2's metrics, attent_vision/metrics.py:
    pixels count where valid and the true depth is > 0; NaN when none does)."""
    d = train_tokens.shape[-1]
    train_x, test_x = standardise(train_tokens.reshape(-1, d), test_tokens.reshape(-1, d))

    def design(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], dim=1)

    targets = log_depth_targets(train_depth, train_valid, patch)
    coefficients = fit_ridge(design(train_x), targets.reshape(-1, patch * patch), ridge)
    predicted = (design(test_x) @ coefficients).reshape(test_tokens.shape[0], -1, patch * patch)
    metrics = DepthMetrics()
    metrics.update(from_patch_pixels(predicted, patch).exp(), test_depth, test_valid)
    found = metrics.compute()
    return {"delta1": found["delta1"], "abs_rel": found["abs_rel"]}
