"""MultiViT: the fine-tuning model. The pretraining encoder (same parameter names) without masking, plus task heads.

All tokens of every input modality are encoded; position embeddings follow the input's token grid (interpolated
from the stored grid when the fine-tuning resolution differs). Heads live in ``output_adapters`` under the
release's names (``cls``, ``semseg``, ``depth``), so released fine-tuned checkpoints load unchanged.
"""

import torch
import torch.nn as nn

from .domains import FINETUNE_INPUT_DOMAINS
from .heads import ClassificationHead, ConvNeXtSegHead, DPTHead
from .multimae import MultiViTEncoder, init_linear_and_norm

HEAD_TYPES = {"cls": ClassificationHead, "semseg": ConvNeXtSegHead, "depth": DPTHead}


class MultiViT(MultiViTEncoder):
    """forward(x) -> {head: output} (or, without heads, the encoder tokens B x N x D).

    x: {modality: tensor}: rgb B x 3 x H x W (ImageNet-normalised), depth B x 1 x H x W.
    Outputs: cls B x num_classes logits; semseg B x num_classes x H x W logits; depth B x 1 x H x W.

    Args (besides the encoder's): ``heads``: {name: keyword arguments} with name in ``cls`` (num_classes,
    mean_pooling, init_scale), ``semseg`` (num_classes, embed_dim, preds_per_patch, depth, ...), ``depth``
    (num_channels, hooks, layer_dims, feature_dim, ...). The heads read the tokens of ``main_tasks`` (default rgb).
    """

    def __init__(self, *, in_domains: list[str], heads: dict[str, dict] | None = None, **encoder_kwargs):
        for d in in_domains:
            if d not in FINETUNE_INPUT_DOMAINS:
                raise ValueError(f"fine-tuning input modality '{d}' is not supported; "
                                 f"choose from {list(FINETUNE_INPUT_DOMAINS)}")
        super().__init__(in_domains=in_domains, **encoder_kwargs)
        init_linear_and_norm(self)
        nn.init.trunc_normal_(self.global_tokens, std=0.02)
        self.output_adapters = nn.ModuleDict()
        for name, options in (heads or {}).items():
            if name not in HEAD_TYPES:
                raise ValueError(f"unknown head '{name}'; choose from {list(HEAD_TYPES)}")
            options = dict(options)
            if name == "depth":
                options.setdefault("depth", len(self.encoder))
            self.output_adapters[name] = HEAD_TYPES[name](self.dim, **options)

    # -------------------------------------------------------------------------------------- timm optimiser hooks
    def no_weight_decay(self) -> set[str]:
        return {"global_tokens"}

    def group_matcher(self, coarse: bool = False) -> dict:
        """Layer groups for layer-wise lr decay (timm's param_groups_layer_decay): adapters and global tokens first,
        then one group per block, then the heads in a group of their own, so that with L blocks the scales are
        decay^(L+1) for the stem, decay^(L-i) for block i and 1 for the heads, as in the MultiMAE/BEiT recipe. (An
        ordinal above any block index places the heads last; timm's (99999,) would merge them into the last
        block.)"""
        return {
            "stem": r"^global_tokens|^input_adapters",
            "blocks": [(r"^encoder\.(\d+)", None), (r"^output_adapters", (1_000_000,))],
        }

    # ---------------------------------------------------------------------------------------------- forward
    def encode(self, x: dict[str, torch.Tensor], all_layers: bool = False):
        """Encode every token of every input modality (all must be in ``x``); see MultiViTEncoder.encode."""
        missing = [d for d in self.in_domains if d not in x]
        if missing:
            raise ValueError(f"the batch lacks input modalities {missing} (got {list(x)})")
        return super().encode(x, all_layers)

    def forward(self, x: dict[str, torch.Tensor]):
        needs_layers = any(isinstance(h, DPTHead) for h in self.output_adapters.values())
        encoded, spans = self.encode(x, all_layers=needs_layers)
        last = encoded[-1] if needs_layers else encoded
        if not len(self.output_adapters):
            return last
        return {
            name: head(encoded if isinstance(head, DPTHead) else last, spans)
            for name, head in self.output_adapters.items()
        }
