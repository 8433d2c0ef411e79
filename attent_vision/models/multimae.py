"""MultiMAE: a ViT encoder over the visible tokens of several modalities, with one small decoder per output.

Module and parameter names match the MultiMAE release exactly (``global_tokens``, ``input_adapters.<m>``,
``encoder.<i>``, ``output_adapters.<m>``), so a released state_dict loads with no renaming.
"""

from functools import partial

import torch
import torch.nn as nn
from timm.models.vision_transformer import Block

from .domains import DOMAINS, check_domains
from .heads.spans import TokenSpans
from .input_adapters import PatchedInputAdapter, SemSegInputAdapter, check_inputs
from .masking import MaskSpec
from .output_adapters import SpatialOutputAdapter, TokenLayout


def init_linear_and_norm(module: nn.Module) -> None:
    """Xavier-uniform linears (fused qkv/kv initialised per projection, as MAE does), zero biases, unit norms."""
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear):
            parts = 3 if name.endswith("qkv") else 2 if name.endswith(".kv") else 1
            bound = (6.0 / (m.weight.shape[0] // parts + m.weight.shape[1])) ** 0.5
            nn.init.uniform_(m.weight, -bound, bound)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            # Like a linear layer over flattened patches.
            nn.init.xavier_uniform_(m.weight.view(m.weight.shape[0], -1))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build_input_adapter(domain: str, *, patch_size: int, dim: int, image_size: int, semseg_num_classes: int):
    spec = DOMAINS[domain]
    if domain == "semseg":
        return SemSegInputAdapter(
            num_classes=semseg_num_classes, stride_level=spec.stride_level, patch_size=patch_size, dim=dim,
            image_size=image_size,
        )
    return PatchedInputAdapter(
        num_channels=spec.channels, stride_level=spec.stride_level, patch_size=patch_size, dim=dim,
        image_size=image_size,
    )


class MultiViTEncoder(nn.Module):
    """Input adapters + global tokens + ViT blocks (no final norm), shared by pretraining and fine-tuning models."""

    def __init__(
        self,
        *,
        in_domains: list[str],
        image_size: int = 224,
        patch_size: int = 16,
        dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        num_global_tokens: int = 1,
        semseg_num_classes: int = 133,
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        if image_size % patch_size != 0:
            raise ValueError(f"image_size={image_size} must be a multiple of patch_size={patch_size}")
        if dim % num_heads != 0 or dim % 4 != 0:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads} and by 4")
        self.in_domains = list(in_domains)
        self.image_size = image_size
        self.patch_size = patch_size
        self.dim = dim
        self.num_global_tokens = num_global_tokens
        self.semseg_num_classes = semseg_num_classes
        self.input_adapters = nn.ModuleDict(
            {
                d: build_input_adapter(
                    d, patch_size=patch_size, dim=dim, image_size=image_size, semseg_num_classes=semseg_num_classes
                )
                for d in in_domains
            }
        )
        self.global_tokens = nn.Parameter(torch.zeros(1, num_global_tokens, dim))
        norm = partial(nn.LayerNorm, eps=1e-6)
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.encoder = nn.Sequential(
            *[
                Block(dim=dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, norm_layer=norm, drop_path=r)
                for r in rates
            ]
        )

    def tokens_per_task(self) -> dict[str, int]:
        """Input tokens per modality at the configured image size."""
        grid = self.image_size // self.patch_size
        return {d: grid * grid for d in self.in_domains}

    def image_hw(self, x: dict[str, torch.Tensor]) -> tuple[int, int]:
        """Full-resolution (H, W) of a batch, read from its first input modality."""
        for d in self.in_domains:
            if d in x:
                h, w = x[d].shape[-2:]
                return h * DOMAINS[d].stride_level, w * DOMAINS[d].stride_level
        raise ValueError(f"the batch holds none of the input modalities {self.in_domains} (got {list(x)})")

    def tokenize(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run each input adapter present in ``x``: {task: B x N_task x D}, in ``in_domains`` order. Shapes are
        checked first (ValueError naming the modality and the shape it needs)."""
        check_inputs(x, self.input_adapters, self.image_size)
        return {d: self.input_adapters[d](x[d]) for d in self.in_domains if d in x}

    def encode(self, x: dict[str, torch.Tensor], all_layers: bool = False):
        """Encode every token of the input modalities present in ``x``, none masked (fine-tuning, probes).
        Returns (tokens B x N x D, or a list with each block's output if ``all_layers``; TokenSpans: where each
        modality's tokens are; the global tokens come last)."""
        tokens = self.tokenize(x)
        hw = self.image_hw(x)
        spans, start = {}, 0
        for d, t in tokens.items():
            spans[d] = (start, start + t.shape[1], self.input_adapters[d].grid_size(hw))
            start += t.shape[1]
        seq = torch.cat(list(tokens.values()) + [self.global_tokens.expand(t.shape[0], -1, -1)], dim=1)
        if not all_layers:
            return self.encoder(seq), TokenSpans(spans, hw)
        outputs = []
        for block in self.encoder:
            seq = block(seq)
            outputs.append(seq)
        return outputs, TokenSpans(spans, hw)


class MultiMAE(MultiViTEncoder):
    """Multi-modal masked autoencoder.

    forward(x, task_masks=None) -> (preds, masks):
        x: {modality: tensor}: rgb B x 3 x H x W, depth B x 1 x H x W, semseg B x H/4 x W/4 (long).
        task_masks: optional {modality: B x N_task} (1/True = masked) replacing the random draw; every sample must
            keep the same number of visible tokens.
        preds: {output: B x C x h x w} (semseg: logits B x num_classes x H/4 x W/4).
        masks: {input modality: B x N_task bool}, the masks used.
    """

    def __init__(
        self,
        *,
        in_domains: list[str],
        out_domains: list[str],
        num_encoded_tokens: int | None = None,
        alpha: float = 1.0,
        sample_tasks_uniformly: bool = False,
        decoder_dim: int = 256,
        decoder_depth: int = 2,
        decoder_heads: int = 8,
        **encoder_kwargs,
    ):
        check_domains(in_domains, out_domains)
        super().__init__(in_domains=in_domains, **encoder_kwargs)
        self.out_domains = list(out_domains)
        total = sum(self.tokens_per_task().values())
        # The release keeps 98 of 3 x 196 tokens visible: one sixth.
        self.num_encoded_tokens = int(num_encoded_tokens) if num_encoded_tokens else max(1, round(total / 6))
        self.mask_spec = MaskSpec(self.tokens_per_task(), self.num_encoded_tokens, alpha, sample_tasks_uniformly)
        self.output_adapters = nn.ModuleDict(
            {
                d: SpatialOutputAdapter(
                    num_channels=self.semseg_num_classes if d == "semseg" else DOMAINS[d].channels,
                    stride_level=DOMAINS[d].stride_level,
                    patch_size=self.patch_size,
                    dim_encoder=self.dim,
                    context_tasks=self.in_domains,
                    query_task=DOMAINS[d].mask_source,
                    image_size=self.image_size,
                    dim=decoder_dim,
                    depth=decoder_depth,
                    num_heads=decoder_heads,
                )
                for d in out_domains
            }
        )
        init_linear_and_norm(self)
        nn.init.trunc_normal_(self.global_tokens, std=0.02)
        for adapter in self.output_adapters.values():
            nn.init.trunc_normal_(adapter.mask_token, std=0.02)
            for emb in adapter.task_embeddings.values():
                nn.init.trunc_normal_(emb, std=0.02)
        for adapter in self.input_adapters.values():
            if isinstance(adapter, SemSegInputAdapter):
                nn.init.trunc_normal_(adapter.class_emb.weight, std=0.02)

    def forward(
        self,
        x: dict[str, torch.Tensor],
        task_masks: dict[str, torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        tokens = self.tokenize(x)
        B = next(iter(tokens.values())).shape[0]
        device = next(iter(tokens.values())).device
        if task_masks is None:
            hw = self.image_hw(x)
            if hw != (self.image_size, self.image_size):
                S = self.image_size  # the mask sampler's token counts are fixed at construction
                raise ValueError(f"random masks are drawn for the model's image_size={S}, but the batch's images are "
                                 f"{hw[0]}x{hw[1]}; resize them to {S}x{S}, build the model for their size, or pass "
                                 "task_masks")
            task_masks = self.mask_spec.sample(B, generator)
        for d, t in tokens.items():
            if d not in task_masks:
                raise ValueError(f"task_masks has no entry for input modality '{d}' (got {list(task_masks)})")
            if task_masks[d].shape != t.shape[:2]:
                raise ValueError(f"mask for '{d}' has shape {tuple(task_masks[d].shape)}; "
                                 f"expected {tuple(t.shape[:2])}")
        # Count visible tokens where the masks live (the CPU, for masks drawn by datasets) before moving them:
        # slicing needs the count on the host, and reading it from GPU memory would stall every step.
        mask_all = torch.cat([task_masks[d].bool() for d in tokens], dim=1)
        visible = (~mask_all).sum(1)
        if not bool((visible == visible[0]).all()):
            raise ValueError("every sample in a batch must keep the same number of visible tokens")
        num_visible = int(visible[0])
        mask_all = mask_all.to(device, non_blocking=True)
        masks = dict(zip(tokens, mask_all.split([t.shape[1] for t in tokens.values()], dim=1)))
        # Visible tokens first, in sequence order (a stable sort keeps runs deterministic).
        ids_shuffle = torch.argsort(mask_all.to(torch.int8), dim=1, stable=True)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :num_visible]

        all_tokens = torch.cat(list(tokens.values()), dim=1)
        kept = torch.gather(all_tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, all_tokens.shape[-1]))
        encoded = self.encoder(torch.cat([kept, self.global_tokens.expand(B, -1, -1)], dim=1))

        hw = self.image_hw(x)
        spans, start = {}, 0
        for d, t in tokens.items():
            spans[d] = (start, start + t.shape[1], self.input_adapters[d].grid_size(hw))
            start += t.shape[1]
        layout = TokenLayout(tasks=spans, ids_keep=ids_keep, ids_restore=ids_restore, image_hw=hw)
        preds = {d: adapter(encoded, layout, self.num_global_tokens) for d, adapter in self.output_adapters.items()}
        return preds, masks
