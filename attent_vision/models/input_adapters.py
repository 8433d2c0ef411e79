"""Input adapters: turn one modality's image into a sequence of tokens with position embeddings.

Parameter names (``proj``, ``pos_emb``, ``class_emb``) equal those of the MultiMAE release, so that released
checkpoints load without renaming.
"""

import torch
import torch.nn as nn

from .pos_embed import build_2d_sincos_pos_embed, resize_pos_embed

SEMSEG_IGNORE_INDEX = 255


def _hw(shape) -> str:
    return f"{shape[-2]}x{shape[-1]}"


class PatchedInputAdapter(nn.Module):
    """Patchify a dense image (rgb, depth) with a strided convolution and add a fixed 2-D position embedding.

    Args:
        num_channels: C of the input image.
        stride_level: resolution of this modality relative to the full image (1 = full resolution).
        patch_size: patch size at full resolution; the conv kernel is ``patch_size // stride_level``.
        dim: token dimension D.
        image_size: full-resolution image size the position-embedding grid is built for.
    """

    def __init__(self, *, num_channels: int, stride_level: int, patch_size: int, dim: int, image_size: int):
        super().__init__()
        self.num_channels = num_channels
        self.stride_level = stride_level
        self.patch = max(1, patch_size // stride_level)
        grid = image_size // (stride_level * self.patch)
        # Stored in the state_dict (as in the release) but never trained.
        self.pos_emb = nn.Parameter(build_2d_sincos_pos_embed(grid, grid, dim), requires_grad=False)
        self.proj = nn.Conv2d(num_channels, dim, kernel_size=self.patch, stride=self.patch)

    def grid_size(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """Token grid (rows, cols) for a full-resolution image of size ``image_hw``."""
        unit = self.stride_level * self.patch
        return image_hw[0] // unit, image_hw[1] // unit

    def check_input(self, x: torch.Tensor, domain: str, image_hw: tuple[int, int]) -> None:
        """Raise ValueError naming ``domain`` and the shape it needs when ``x`` is not B x C x H x W (float, H and W
        multiples of the patch) at the batch's full resolution ``image_hw``."""
        C = self.num_channels
        want = f"a B x {C} x H x W float tensor"
        if x.dim() != 4 or x.shape[1] != C:
            hint = ""
            if x.dim() == 3 and x.shape[0] == C:
                hint = "; add the batch dimension with x.unsqueeze(0)"
            elif x.dim() == 3 and C == 1:
                hint = "; add the channel dimension with x.unsqueeze(1)"
            elif x.dim() == 4 and x.shape[-1] == C:
                hint = "; channels-last images need x.permute(0, 3, 1, 2)"
            raise ValueError(f"{domain} must be {want}, got shape {tuple(x.shape)}{hint}")
        if not x.is_floating_point():
            raise ValueError(f"{domain} must be {want}, got {x.dtype}; convert (and normalise) it, e.g. x.float()")
        if tuple(x.shape[-2:]) != tuple(image_hw):
            raise ValueError(f"{domain} is {_hw(x.shape)} but the batch's images are {image_hw[0]}x{image_hw[1]}; "
                             f"give every full-resolution modality at the same size")
        if x.shape[-2] % self.patch or x.shape[-1] % self.patch:
            raise ValueError(f"{domain} is {_hw(x.shape)}, not a multiple of the patch size {self.patch}; resize or "
                             f"crop it to a multiple of {self.patch}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: B x C x H x W -> tokens B x (H/P * W/P) x D (row-major)."""
        tokens = self.proj(x)
        grid = tokens.shape[-2:]
        return tokens.flatten(2).transpose(1, 2) + resize_pos_embed(self.pos_emb, grid, mode="bicubic")


class SemSegInputAdapter(nn.Module):
    """Embed class-id maps (semantic segmentation) and patchify them.

    Each pixel's class id is looked up in a learned table (``class_emb``, num_classes x dim_class_emb), then a
    strided convolution turns the embedded map into tokens. Pixels equal to the ignore index (void, or ids outside
    the class range, see the datasets) contribute a zero embedding instead of being mapped onto a real class.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        stride_level: int,
        patch_size: int,
        dim: int,
        image_size: int,
        dim_class_emb: int = 64,
        ignore_index: int = SEMSEG_IGNORE_INDEX,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.stride_level = stride_level
        self.ignore_index = ignore_index
        self.patch = max(1, patch_size // stride_level)
        grid = image_size // (stride_level * self.patch)
        self.pos_emb = nn.Parameter(build_2d_sincos_pos_embed(grid, grid, dim), requires_grad=False)
        self.class_emb = nn.Embedding(num_classes, dim_class_emb)
        nn.init.trunc_normal_(self.class_emb.weight, std=0.02)
        self.proj = nn.Conv2d(dim_class_emb, dim, kernel_size=self.patch, stride=self.patch)

    def grid_size(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        unit = self.stride_level * self.patch
        return image_hw[0] // unit, image_hw[1] // unit

    def check_input(self, labels: torch.Tensor, domain: str, image_hw: tuple[int, int]) -> None:
        """Raise ValueError naming ``domain`` and the shape it needs when ``labels`` is not B x H/s x W/s integer
        class ids (s = stride_level) for the batch's full resolution ``image_hw``; a full-resolution map (the common
        mistake) gets its own message, not the mask-shape error it would cause further on."""
        s = self.stride_level
        h, w = image_hw[0] // s, image_hw[1] // s
        images = f"{image_hw[0]}x{image_hw[1]} images"
        want = f"B x H/{s} x W/{s} class ids ({h}x{w} for {images})"
        if labels.dim() == 4 and labels.shape[1] == 1:
            raise ValueError(f"{domain} must be {want}, got shape {tuple(labels.shape)}; drop the channel with "
                             "labels.squeeze(1)")
        if labels.dim() != 3:
            raise ValueError(f"{domain} must be {want}, got shape {tuple(labels.shape)}")
        if labels.dtype not in (torch.long, torch.int32):  # what nn.Embedding takes
            raise ValueError(f"{domain} must hold class ids as torch.long, got {labels.dtype}; convert it with .long()")
        if tuple(labels.shape[-2:]) == tuple(image_hw) and s > 1:
            raise ValueError(
                f"{domain} must be given at image_size/{s} ({h}x{w} for {images}), got {_hw(labels.shape)}; "
                f"downsample it with nearest interpolation, e.g. F.interpolate({domain}[:, None].float(), "
                f"size=({h}, {w}), mode='nearest-exact')[:, 0].long()"
            )
        if tuple(labels.shape[-2:]) != (h, w):
            raise ValueError(f"{domain} must be {want}, got {_hw(labels.shape)}")
        if h % self.patch or w % self.patch:
            raise ValueError(f"{domain} is {h}x{w}, not a multiple of its patch size {self.patch} (patch_size/{s}); "
                             f"use images whose sides are multiples of {self.patch * s}")

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        """labels: B x h x w (long class ids, h = H / stride_level) -> tokens B x (h/p * w/p) x D."""
        valid = labels != self.ignore_index
        emb = self.class_emb(torch.where(valid, labels, 0)) * valid.unsqueeze(-1).to(self.class_emb.weight.dtype)
        tokens = self.proj(emb.permute(0, 3, 1, 2))
        grid = tokens.shape[-2:]
        return tokens.flatten(2).transpose(1, 2) + resize_pos_embed(self.pos_emb, grid, mode="bilinear")


def check_inputs(x: dict[str, torch.Tensor], adapters: dict[str, nn.Module], image_size: int) -> tuple[int, int]:
    """Check every input modality in ``x`` against its adapter before any convolution runs (a wrong shape otherwise
    surfaces as a confusing conv or mask-shape error). The batch's full resolution is that of its first
    full-resolution modality (rgb, depth), else the model's ``image_size``. Returns that (H, W)."""
    full_res = [d for d in adapters if d in x and adapters[d].stride_level == 1 and x[d].dim() >= 2]
    image_hw = tuple(x[full_res[0]].shape[-2:]) if full_res else (image_size, image_size)
    for d, adapter in adapters.items():
        if d in x:
            adapter.check_input(x[d], d, image_hw)
    return image_hw
