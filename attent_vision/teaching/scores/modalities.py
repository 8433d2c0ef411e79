"""One score per sample from per-task scores: the training objective's weights, or chosen modality weights.

With no modality weights (``teaching.score_modalities: null``) the score is the weighted sum of the per-task
values with the loss module's weights: for ``score=loss`` exactly the sample's training objective (the paper).
With modality weights, each task's column is first divided by the mean of that task's current loss over the
scored samples, so that no modality dominates by scale alone (semseg cross-entropy is several times an rgb MSE),
then summed with the given weights; modalities not named get weight 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def combine(per_task: torch.Tensor, current: torch.Tensor, weights: torch.Tensor, normalise: bool) -> torch.Tensor:
    """per_task: N x T scores; current: N x T current losses (for the per-task scale); weights: T.
    Returns N scores; NaN where any weighted task is NaN, -inf where the sample failed to load."""
    import torch

    weights = weights.to(per_task)
    if normalise:
        scale = torch.ones_like(weights)
        for t in range(per_task.shape[1]):
            column = current[:, t]
            seen = column[torch.isfinite(column)]
            if seen.numel():
                scale[t] = seen.abs().mean().clamp_min(1e-12)
        per_task = per_task / scale
    used = weights != 0
    score = (per_task[:, used] * weights[used]).sum(dim=1)
    failed = torch.isneginf(current).any(dim=1)
    return torch.where(failed, torch.full_like(score, float("-inf")), score)
