"""Fixed 2-D sine-cosine position embeddings (MoCo-v3 style) and their resizing."""

import torch
import torch.nn.functional as F


def build_2d_sincos_pos_embed(height: int, width: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Return a fixed 2-D sin-cos embedding of shape (1, dim, height, width).

    A quarter of the channels each hold sin and cos of the first grid axis and of the second one, at geometric
    frequencies. The grid is built with ``meshgrid(w, h)`` in "ij" order and then read back as (h w), exactly as the
    MultiMAE release does, so that models trained from scratch here and the released weights share one convention.
    """
    if dim % 4 != 0:
        raise ValueError(f"sin-cos position embeddings need a dimension divisible by 4, got {dim}")
    grid_w, grid_h = torch.meshgrid(
        torch.arange(width, dtype=torch.float32), torch.arange(height, dtype=torch.float32), indexing="ij"
    )
    quarter = dim // 4
    omega = 1.0 / (temperature ** (torch.arange(quarter, dtype=torch.float32) / quarter))
    out_w = grid_w.flatten()[:, None] * omega[None, :]
    out_h = grid_h.flatten()[:, None] * omega[None, :]
    emb = torch.cat([out_w.sin(), out_w.cos(), out_h.sin(), out_h.cos()], dim=1)  # (h*w) x dim
    return emb.reshape(height, width, dim).permute(2, 0, 1).unsqueeze(0).contiguous()


def resize_pos_embed(pos_emb: torch.Tensor, grid: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize a (1, D, h, w) embedding to ``grid`` and flatten it to tokens: returns (1, H*W, D).

    No work is done when the grid already matches (the common case during pretraining).
    """
    if tuple(pos_emb.shape[-2:]) != tuple(grid):
        pos_emb = F.interpolate(pos_emb, size=grid, mode=mode, align_corners=False)
    return pos_emb.flatten(2).transpose(1, 2)
