"""Joint transforms: one crop box and one flip shared by all modalities of a sample, then per-modality
normalisation (ImageNet statistics for rgb, robust standardisation for depth, nearest resizing for labels)."""

import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from ..normalize import IMAGENET_MEAN, IMAGENET_STD, robust_standardize_depth

# Labels must never be blended: nearest for semseg, smooth kernels for images.
INTERPOLATION = {"rgb": InterpolationMode.BICUBIC, "depth": InterpolationMode.BILINEAR,
                 "semseg": InterpolationMode.NEAREST_EXACT}


def sample_crop(height: int, width: int, scale, ratio, hflip_prob: float, seed: int):
    """Draw one random-resized-crop box (top, left, h, w) and a flip decision from ``seed``.

    Uses torchvision's RandomResizedCrop parameter sampling on a forked, seeded RNG, so the draw depends only on
    the seed (not on worker processes or on the global RNG).
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # CPU only: cheap, and restored on exit
        box = T.RandomResizedCrop.get_params(torch.empty(1, height, width), list(scale), list(ratio))
        flip = bool(torch.rand(()) < hflip_prob)
    return tuple(int(v) for v in box), flip


def center_box(height: int, width: int) -> tuple[int, int, int, int]:
    """The largest centred square: the deterministic view used for scoring and validation."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def crop_resize(raw: dict[str, torch.Tensor], box, size: int, flip: bool) -> dict[str, torch.Tensor]:
    """Apply one crop box, resize to size x size and optionally flip every modality. Labels stay integer."""
    top, left, h, w = box
    out = {}
    for m, x in raw.items():
        image = x.unsqueeze(0) if m == "semseg" else x
        image = TF.resized_crop(image, top, left, h, w, [size, size], interpolation=INTERPOLATION[m],
                                antialias=m != "semseg")
        if flip:
            image = TF.horizontal_flip(image)
        out[m] = image.squeeze(0) if m == "semseg" else image
    return out


def to_model_inputs(view: dict[str, torch.Tensor], semseg_stride: int = 4) -> dict[str, torch.Tensor]:
    """Raw cropped tensors -> model inputs: rgb float normalised 3 x S x S, depth standardised 1 x S x S,
    semseg long (S / stride) x (S / stride)."""
    out = {}
    if "rgb" in view:
        rgb = view["rgb"].float() / 255.0
        out["rgb"] = TF.normalize(rgb, IMAGENET_MEAN, IMAGENET_STD)
    if "depth" in view:
        out["depth"] = robust_standardize_depth(view["depth"].float())
    if "semseg" in view:
        labels = view["semseg"]
        small = (labels.shape[0] // semseg_stride, labels.shape[1] // semseg_stride)
        out["semseg"] = F.interpolate(labels[None, None].float(), size=small, mode="nearest-exact")[0, 0].long()
    return out
