"""Output adapters: small cross-attention decoders that reconstruct one modality from the encoder's tokens.

Structure and parameter names follow the MultiMAE release (``proj_context``, ``mask_token``, ``task_embeddings``,
``pos_emb``, ``decoder.{q,kv,proj}``, ``{query,context,out}_norm``, ``mlp``, ``decoder_transformer.{i}``,
``out_proj``), so released decoders load unchanged.
"""

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import Mlp
from timm.models.vision_transformer import Block

from .pos_embed import build_2d_sincos_pos_embed, resize_pos_embed


@dataclass
class TokenLayout:
    """Where each input modality's tokens sit in the concatenated (unshuffled) token sequence.

    ``tasks`` maps task -> (start, end, grid) in input order; ``ids_keep`` (B x V) are the positions of the visible
    tokens in that sequence and ``ids_restore`` (B x N_all) undoes the visible-first ordering.
    """

    tasks: dict[str, tuple[int, int, tuple[int, int]]]
    ids_keep: torch.Tensor
    ids_restore: torch.Tensor
    image_hw: tuple[int, int]

    @property
    def num_tokens(self) -> int:
        return sum(end - start for start, end, _ in self.tasks.values())


class CrossAttention(nn.Module):
    """Multi-head attention of queries (B x Nq x D) over a context (B x Nc x D), fused SDPA kernel."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        B, Nq, D = x.shape
        h = self.num_heads
        q = self.q(x).reshape(B, Nq, h, D // h).transpose(1, 2)
        k, v = self.kv(context).reshape(B, context.shape[1], 2, h, D // h).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, Nq, D))


class SpatialOutputAdapter(nn.Module):
    """Decode one dense output (rgb, depth, semseg logits, norm_rgb) from visible encoder tokens.

    Args:
        num_channels: output channels C (3 rgb, 1 depth, num_classes for semseg logits).
        stride_level: output resolution relative to the full image (semseg predicts at 1/4).
        patch_size: full-resolution patch size; each token predicts ``patch_size // stride_level`` pixels squared.
        dim_encoder: encoder token dimension (input of ``proj_context``).
        context_tasks: the input modalities, each with its own learned task embedding.
        query_task: the modality whose token grid serves as queries (``rgb`` for the ``norm_rgb`` head).
        dim, depth, num_heads: decoder width, number of self-attention blocks after the cross-attention, heads.
    """

    def __init__(
        self,
        *,
        num_channels: int,
        stride_level: int,
        patch_size: int,
        dim_encoder: int,
        context_tasks: list[str],
        query_task: str,
        image_size: int,
        dim: int = 256,
        depth: int = 2,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
    ):
        super().__init__()
        self.num_channels = num_channels
        self.stride_level = stride_level
        self.patch = max(1, patch_size // stride_level)
        self.query_task = query_task
        grid = image_size // (stride_level * self.patch)
        norm = partial(nn.LayerNorm, eps=1e-6)

        self.pos_emb = nn.Parameter(build_2d_sincos_pos_embed(grid, grid, dim), requires_grad=False)
        self.task_embeddings = nn.ParameterDict({t: nn.Parameter(torch.zeros(1, 1, dim)) for t in context_tasks})
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.proj_context = nn.Linear(dim_encoder, dim)
        self.decoder = CrossAttention(dim, num_heads)
        self.context_norm = norm(dim)
        self.query_norm = norm(dim)
        self.out_norm = norm(dim)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio))
        self.decoder_transformer = nn.Sequential(
            *[Block(dim=dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, norm_layer=norm)
              for _ in range(depth)]
        )
        self.out_proj = nn.Linear(dim, num_channels * self.patch * self.patch)
        for p in [self.mask_token, *self.task_embeddings.values()]:
            nn.init.trunc_normal_(p, std=0.02)

    def output_grid(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        unit = self.stride_level * self.patch
        return image_hw[0] // unit, image_hw[1] // unit

    def forward(self, encoder_tokens: torch.Tensor, layout: TokenLayout, num_global_tokens: int) -> torch.Tensor:
        """encoder_tokens: B x (V + G) x D_enc (visible tokens, then G global tokens) -> B x C x H/s x W/s."""
        B = encoder_tokens.shape[0]
        x = self.proj_context(encoder_tokens)
        visible, global_tokens = x[:, :-num_global_tokens], x[:, -num_global_tokens:]
        dim = x.shape[-1]

        # Back to the full token sequence: visible tokens in place, mask tokens elsewhere.
        fill = self.mask_token.expand(B, layout.num_tokens - visible.shape[1], dim)
        full = torch.cat([visible, fill], dim=1)
        full = torch.gather(full, 1, layout.ids_restore.unsqueeze(-1).expand(-1, -1, dim))

        grid = self.output_grid(layout.image_hw)
        pos = resize_pos_embed(self.pos_emb, grid, mode="bilinear")  # 1 x N_out x dim
        embedded = []
        for task, (start, end, _) in layout.tasks.items():
            emb = self.task_embeddings[task] if task in self.task_embeddings else torch.zeros_like(self.mask_token)
            if end - start != pos.shape[1]:
                raise ValueError(
                    f"modality '{task}' has {end - start} tokens but the '{self.query_task}' decoder grid has "
                    f"{pos.shape[1]}; all modalities must share one token grid"
                )
            embedded.append(full[:, start:end] + emb + pos)
        full = torch.cat(embedded, dim=1)

        if self.query_task in layout.tasks:
            start, end, _ = layout.tasks[self.query_task]
            queries = full[:, start:end]
        else:
            queries = self.mask_token.expand(B, pos.shape[1], dim) + pos
        # Context: only the visible tokens (with their embeddings), then the global tokens (no embedding).
        context = torch.gather(full, 1, layout.ids_keep.unsqueeze(-1).expand(-1, -1, dim))
        context = torch.cat([context, global_tokens], dim=1)

        y = self.decoder(self.query_norm(queries), self.context_norm(context))  # no residual, as in the release
        y = y + self.mlp(self.out_norm(y))
        y = self.decoder_transformer(y)
        y = self.out_proj(y)  # B x N_out x (C p p)
        gh, gw = grid
        p = self.patch
        y = y.reshape(B, gh, gw, self.num_channels, p, p).permute(0, 3, 1, 4, 2, 5)
        return y.reshape(B, self.num_channels, gh * p, gw * p)
