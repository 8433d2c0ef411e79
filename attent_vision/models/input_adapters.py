"""Input adapters: turn one modality's image into a sequence of tokens with position embeddings.

Parameter names (``proj``, ``pos_emb``, ``class_emb``) equal those of the MultiMAE release, so that released
checkpoints load without renaming.
"""

import torch
import torch.nn as nn

from .pos_embed import build_2d_sincos_pos_embed, resize_pos_embed

SEMSEG_IGNORE_INDEX = 255


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

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        """labels: B x h x w (long class ids, h = H / stride_level) -> tokens B x (h/p * w/p) x D."""
        valid = labels != self.ignore_index
        emb = self.class_emb(torch.where(valid, labels, 0)) * valid.unsqueeze(-1).to(self.class_emb.weight.dtype)
        tokens = self.proj(emb.permute(0, 3, 1, 2))
        grid = tokens.shape[-2:]
        return tokens.flatten(2).transpose(1, 2) + resize_pos_embed(self.pos_emb, grid, mode="bilinear")
