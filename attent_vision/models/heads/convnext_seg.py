"""Semantic-segmentation head (the release's ``ConvNeXtAdapter``).

Each patch token is projected to ``embed_dim`` = ``preds_per_patch`` x ``class_dim`` channels and pixel-shuffled into
a sqrt(preds_per_patch)-square of ``class_dim``-channel features (at the reference setting 6144 = 16 x 384: a 4 x 4
block per 16-pixel patch, i.e. an H/4 x W/4 map), refined by ConvNeXt blocks, projected to class logits by a 1 x 1
convolution and upsampled bilinearly to the image size.

Keys: ``proj_dec``, ``blocks.{i}.{dwconv,norm,pwconv1,pwconv2}``, ``final_layer`` (as ``output_adapters.semseg``).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath, LayerNorm

from .spans import TokenSpans


class ConvNeXtBlock(nn.Module):
    """7 x 7 depthwise conv, channels-last LayerNorm, 4x MLP with exact GELU, residual; no layer scale (as the
    release). x: B x C x H x W -> B x C x H x W."""

    def __init__(self, dim: int, drop_path: float = 0.0):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + self.drop_path(y.permute(0, 3, 1, 2))


class ConvNeXtSegHead(nn.Module):
    """tokens B x N x D -> logits B x num_classes x H x W.

    Args:
        dim_tokens: encoder width D (times the number of main tasks, whose tokens are concatenated).
        num_classes: output classes (NYUv2: 40).
        embed_dim: width of the per-token projection (reference 6144).
        preds_per_patch: a square number; each token becomes a sqrt x sqrt block (reference 16).
        depth: ConvNeXt blocks (reference 4).
        main_tasks: input modalities whose tokens the head reads (reference: rgb).
    """

    def __init__(self, dim_tokens: int, num_classes: int, *, embed_dim: int = 6144, preds_per_patch: int = 16,
                 depth: int = 4, main_tasks: tuple[str, ...] = ("rgb",), drop_path: float = 0.0,
                 interpolate_mode: str = "bilinear"):
        super().__init__()
        side = math.isqrt(preds_per_patch)
        if side * side != preds_per_patch:
            raise ValueError(f"preds_per_patch={preds_per_patch} must be a square number (4, 16, 64, ...)")
        if embed_dim % preds_per_patch:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by preds_per_patch={preds_per_patch}")
        self.main_tasks = list(main_tasks)
        self.preds_per_patch = preds_per_patch
        self.side = side
        self.class_dim = embed_dim // preds_per_patch
        self.interpolate_mode = interpolate_mode
        self.proj_dec = nn.Linear(dim_tokens * len(self.main_tasks), embed_dim)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(self.class_dim, drop_path) for _ in range(depth)])
        self.final_layer = nn.Conv2d(self.class_dim, num_classes, kernel_size=1)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, tokens: torch.Tensor, spans: TokenSpans) -> torch.Tensor:
        x = self.proj_dec(spans.gather(tokens, self.main_tasks))  # B x (h w) x (p c)
        B = x.shape[0]
        h, w = spans.grid(self.main_tasks[0])
        s, c = self.side, self.class_dim
        # Token (i, j)'s channels hold an s x s block of c-channel pixels: (p c) with p = (sy sx) row-major.
        x = x.view(B, h, w, s, s, c).permute(0, 5, 1, 3, 2, 4).reshape(B, c, h * s, w * s)
        x = self.final_layer(self.blocks(x))
        return F.interpolate(x, size=spans.image_hw, mode=self.interpolate_mode, align_corners=False)
