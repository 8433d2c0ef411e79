"""Reconstruction figures: masked input, prediction and target per modality for a few validation samples."""

from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import save_image

from ..data.normalize import IMAGENET_MEAN, IMAGENET_STD


def _rgb(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x * std + mean).clamp(0, 1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Per-image min-max to [0, 1], as 3 channels. B x 1 x H x W -> B x 3 x H x W."""
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    return ((x - lo) / (hi - lo).clamp_min(1e-6)).expand(-1, 3, -1, -1)


def _colour(labels: torch.Tensor, size) -> torch.Tensor:
    """Class ids B x h x w -> a fixed pseudo-colour per id, B x 3 x H x W (nearest upsampling)."""
    ids = labels.long().clamp(0, 255)
    palette = torch.stack([(ids * 37) % 255, (ids * 91 + 50) % 255, (ids * 163 + 100) % 255], dim=1).float() / 255
    palette = torch.where((labels == 255).unsqueeze(1), torch.zeros_like(palette), palette)
    return F.interpolate(palette, size=size, mode="nearest")


def _hide(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Grey out masked tokens. image B x 3 x H x W, mask B x N (True = hidden) on a square grid."""
    side = int(mask.shape[1] ** 0.5)
    pix = F.interpolate(mask.float().view(-1, 1, side, side), size=image.shape[-2:], mode="nearest")
    return image * (1 - pix) + 0.5 * pix


@torch.no_grad()
def save_reconstructions(batch: dict, preds: dict, masks: dict, path: Path) -> Path:
    """One row per sample: for each predicted modality, [masked input,] prediction, target."""
    size = max((p.shape[-2:] for p in preds.values()), key=lambda hw: hw[0])  # full resolution (semseg is 1/4)
    columns = []
    for task, pred in preds.items():
        if task == "norm_rgb":
            continue
        if task == "rgb":
            target, shown = _rgb(batch["rgb"]), _rgb(pred.float())
        elif task == "depth":
            target, shown = _gray(batch["depth"]), _gray(pred.float())
        else:
            target, shown = _colour(batch["semseg"], size), _colour(pred.argmax(1), size)
        if task in masks:
            columns.append(_hide(target, masks[task]))
        columns += [shown, target]
    grid = torch.stack(columns, dim=1).flatten(0, 1).cpu()  # B*cols x 3 x H x W, row-major per sample
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, path, nrow=len(columns), padding=1, pad_value=1.0)
    return path
