"""Model sizes and ``create_model``: the one way configs, tests and users build models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model classes (and torch) are imported when a model is built, not when a name is checked
    import torch.nn as nn


@dataclass(frozen=True)
class Size:
    """Encoder width/depth/heads and the decoder settings that go with them."""

    dim: int
    depth: int
    num_heads: int
    decoder_dim: int = 256
    decoder_depth: int = 2
    decoder_heads: int = 8
    # Input resolution and patch the size is used with (its model config's defaults, conf/train/model/*.yaml).
    image_size: int = 224
    patch_size: int = 16


SIZES = {
    # Ours, for CPU work: pico for unit tests, nano for the embedded default run; small images, patch 8.
    "pico": Size(dim=32, depth=2, num_heads=2, decoder_dim=32, decoder_depth=1, decoder_heads=2, image_size=32,
                 patch_size=8),
    "nano": Size(dim=96, depth=4, num_heads=3, decoder_dim=64, decoder_depth=1, decoder_heads=4, image_size=64,
                 patch_size=8),
    "tiny": Size(dim=192, depth=12, num_heads=3),
    "small": Size(dim=384, depth=12, num_heads=6),
    # Published MultiMAE sizes.
    "base": Size(dim=768, depth=12, num_heads=12),
    "large": Size(dim=1024, depth=24, num_heads=16),
}

FAMILIES = ("multimae", "multivit")


def parse_model_name(name: str) -> tuple[str, Size]:
    """'multimae_base' -> ('multimae', SIZES['base']); a clear ValueError for anything else."""
    family, _, size = name.partition("_")
    if family not in FAMILIES or size not in SIZES:
        known = [f"{f}_{s}" for f in FAMILIES for s in SIZES]
        raise ValueError(f"unknown model '{name}'; choose from {known}")
    return family, SIZES[size]


def create_model(name: str, **overrides) -> nn.Module:
    """Build a model by name (``multimae_<size>`` or ``multivit_<size>``; sizes: pico, nano, tiny, small, base,
    large). Keyword ``overrides`` replace size defaults and set the rest, e.g. ``image_size``, ``patch_size``,
    ``in_domains``, ``out_domains``, ``num_encoded_tokens``, ``dim``, ``decoder_depth``. Overrides set to None are
    ignored, so a config can pass optional keys straight through. The defaults equal the size's model config
    (pico: 32 px, patch 8; nano: 64 px, patch 8; tiny to large: 224 px, patch 16; rgb, depth and semseg in and out)."""
    family, size = parse_model_name(name)
    kwargs = dict(dim=size.dim, depth=size.depth, num_heads=size.num_heads, image_size=size.image_size,
                  patch_size=size.patch_size)
    if family == "multimae":
        kwargs.update(decoder_dim=size.decoder_dim, decoder_depth=size.decoder_depth, decoder_heads=size.decoder_heads)
        kwargs.update(in_domains=["rgb", "depth", "semseg"], out_domains=["rgb", "depth", "semseg"])
    else:
        kwargs.update(in_domains=["rgb"])
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    if family == "multimae":
        from .multimae import MultiMAE

        return MultiMAE(**kwargs)
    from .multivit import MultiViT

    return MultiViT(**kwargs)
