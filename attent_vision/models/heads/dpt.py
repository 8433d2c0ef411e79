"""Dense-regression head (the release's ``DPTOutputAdapter``, regression variant): depth from four encoder stages.

Four hooked block outputs are reshaped to token grids, "reassembled" to four resolutions (4x, 2x, 1x and 1/2x the
token grid: ``act_postprocess``), projected to ``feature_dim`` (``scratch.layer_rn``), fused coarse to fine by
residual refinement blocks (``scratch.refinenet{4..1}``, each upsampling 2x), and a small convolutional head
predicts the output at the image resolution.

Keys follow the release exactly, including its two names for the same modules: ``act_{1..4}_postprocess`` and
``act_postprocess.{0..3}``, ``scratch.layer{1..4}_rn`` and ``scratch.layer_rn.{0..3}``. The state_dict therefore
holds both; :func:`fill_duplicate_registrations` completes a state_dict that holds only one of them.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .spans import TokenSpans

# (canonical prefix, alias prefix) pairs inside the head.
DUPLICATE_PREFIXES = [(f"act_postprocess.{i}.", f"act_{i + 1}_postprocess.") for i in range(4)] + [
    (f"scratch.layer_rn.{i}.", f"scratch.layer{i + 1}_rn.") for i in range(4)
]


def default_hooks(depth: int) -> list[int]:
    """Four evenly spaced blocks ending with the last: [2, 5, 8, 11] for 12 blocks (the reference), [5, 11, 17, 23]
    for 24; shallow test models repeat blocks ([0, 0, 1, 1] for 2)."""
    return [max(0, -(-(i + 1) * depth // 4) - 1) for i in range(4)]


def default_layer_dims(dim: int) -> list[int]:
    """Reassembly widths D/8, D/4, D/2, D: [96, 192, 384, 768] at D = 768, the reference."""
    return [max(1, dim // 8), max(1, dim // 4), max(1, dim // 2), dim]


def fill_duplicate_registrations(state: dict, prefix: str) -> dict:
    """Return ``state`` with every DPT module present under both of its names (``prefix`` = the head's key prefix,
    e.g. ``output_adapters.depth.``). Files that store only one name (other converters, hand-edited files) then load
    completely instead of reporting the other name as missing."""
    out = dict(state)
    for canonical, alias in DUPLICATE_PREFIXES:
        for src, dst in ((prefix + canonical, prefix + alias), (prefix + alias, prefix + canonical)):
            for key in [k for k in state if k.startswith(src)]:
                out.setdefault(dst + key[len(src) :], state[key])
    return out


class ResidualConvUnit(nn.Module):
    """x + conv(relu(conv(relu(x)))), 3 x 3 convolutions, no normalisation."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(features, features, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FusionBlock(nn.Module):
    """Fuse a coarser path with a skip feature, refine, upsample 2x (bilinear, align_corners) and mix (1 x 1)."""

    def __init__(self, features: int):
        super().__init__()
        self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)
        self.out_conv = nn.Conv2d(features, features, kernel_size=1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            res = self.resConfUnit1(skip)
            if x.shape[-2:] != res.shape[-2:]:  # odd token grids: the 1/2x stage rounds up
                x = F.interpolate(x, size=res.shape[-2:], mode="bilinear", align_corners=True)
            x = x + res
        x = self.resConfUnit2(x)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class Interpolate(nn.Module):
    """Parameter-free upsampling inside ``head`` (keeps the release's module indices: head.0, head.2, head.4)."""

    def __init__(self, scale_factor: float):
        super().__init__()
        self.scale_factor = scale_factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale_factor, mode="bilinear", align_corners=True)


class DPTHead(nn.Module):
    """block outputs (list of B x N x D, one per encoder block) -> B x num_channels x H x W.

    Args:
        dim_tokens: encoder width D.
        num_channels: output channels (depth: 1).
        hooks: the four block indices read (reference [2, 5, 8, 11]; default: :func:`default_hooks`).
        layer_dims: reassembly widths (reference [96, 192, 384, 768]; default: :func:`default_layer_dims`).
        feature_dim: fusion width (reference 256).
        main_tasks: input modalities whose tokens the head reads (reference: rgb).
    """

    def __init__(self, dim_tokens: int, num_channels: int = 1, *, depth: int, hooks: list[int] | None = None,
                 layer_dims: list[int] | None = None, feature_dim: int = 256,
                 main_tasks: tuple[str, ...] = ("rgb",)):
        super().__init__()
        self.hooks = list(hooks) if hooks is not None else default_hooks(depth)
        if len(self.hooks) != 4 or not all(0 <= h < depth for h in self.hooks):
            raise ValueError(f"DPT hooks={self.hooks} must be four block indices in [0, {depth - 1}]")
        dims = list(layer_dims) if layer_dims is not None else default_layer_dims(dim_tokens)
        if len(dims) != 4:
            raise ValueError(f"DPT layer_dims={dims} must have four entries")
        self.main_tasks = list(main_tasks)
        d_in = dim_tokens * len(self.main_tasks)

        self.scratch = nn.Module()
        for i in range(4):
            setattr(self.scratch, f"layer{i + 1}_rn", nn.Conv2d(dims[i], feature_dim, 3, padding=1, bias=False))
        self.scratch.layer_rn = nn.ModuleList([getattr(self.scratch, f"layer{i + 1}_rn") for i in range(4)])
        for i in range(4):
            setattr(self.scratch, f"refinenet{i + 1}", FusionBlock(feature_dim))
        self.head = nn.Sequential(
            nn.Conv2d(feature_dim, feature_dim // 2, kernel_size=3, padding=1),
            Interpolate(scale_factor=2),
            nn.Conv2d(feature_dim // 2, 32, kernel_size=3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(32, num_channels, kernel_size=1),
        )
        # Reassembly: 4x and 2x up by transposed convs, 1x as is, 1/2x by a strided conv.
        self.act_1_postprocess = nn.Sequential(
            nn.Conv2d(d_in, dims[0], 1), nn.ConvTranspose2d(dims[0], dims[0], 4, stride=4)
        )
        self.act_2_postprocess = nn.Sequential(
            nn.Conv2d(d_in, dims[1], 1), nn.ConvTranspose2d(dims[1], dims[1], 2, stride=2)
        )
        self.act_3_postprocess = nn.Sequential(nn.Conv2d(d_in, dims[2], 1))
        self.act_4_postprocess = nn.Sequential(
            nn.Conv2d(d_in, dims[3], 1), nn.Conv2d(dims[3], dims[3], 3, stride=2, padding=1)
        )
        self.act_postprocess = nn.ModuleList(
            [self.act_1_postprocess, self.act_2_postprocess, self.act_3_postprocess, self.act_4_postprocess]
        )

    def forward(self, block_outputs: list[torch.Tensor], spans: TokenSpans) -> torch.Tensor:
        h, w = spans.grid(self.main_tasks[0])
        layers = []
        for i, hook in enumerate(self.hooks):
            x = spans.gather(block_outputs[hook], self.main_tasks)  # B x (h w) x D
            x = x.transpose(1, 2).reshape(x.shape[0], -1, h, w)
            layers.append(self.scratch.layer_rn[i](self.act_postprocess[i](x)))
        path = self.scratch.refinenet4(layers[3])
        path = self.scratch.refinenet3(path, layers[2])
        path = self.scratch.refinenet2(path, layers[1])
        path = self.scratch.refinenet1(path, layers[0])
        out = self.head(path)  # 16x the token grid: the image size at patch 16
        if tuple(out.shape[-2:]) != tuple(spans.image_hw):
            out = F.interpolate(out, size=spans.image_hw, mode="bilinear", align_corners=False)
        return out
