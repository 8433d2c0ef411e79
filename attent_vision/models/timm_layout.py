"""Encoder weights between our (MultiMAE release) layout and timm's ``VisionTransformer`` layout.

MultiMAE -> timm (``vit_*``):
    encoder.{i}.*                  -> blocks.{i}.*           (identical timm Block layout)
    global_tokens (1, 1, D)        -> cls_token (1, 1, D)
    input_adapters.rgb.pos_emb     -> pos_embed (1, 1 + h*w, D): row-major grid tokens after a zero row for cls
        (1, D, h, w)                  (the global token has no position embedding in MultiMAE)
    input_adapters.rgb.proj.*      -> patch_embed.proj.*
timm's final ``norm`` has no counterpart (MultiMAE has no final LayerNorm): a timm model loads the export strictly
except ``norm.*``, and with ``norm`` set to Identity its tokens equal ours (the cls token first instead of last; the
order does not matter to attention without positional bias on that token).

The reverse mapping lets fine-tuning start from timm-format ViT files (e.g. MAE or the release's ``_timm`` files).
"""

from pathlib import Path

import torch

from ..errors import CheckpointError


def multivit_to_timm(state: dict[str, torch.Tensor], modality: str = "rgb") -> dict[str, torch.Tensor]:
    """Encoder of a MultiMAE/MultiViT state_dict -> timm ViT state_dict (decoders, heads, other adapters dropped).

    Raises CheckpointError naming what is missing when the state_dict holds no such encoder.
    """
    needed = ["global_tokens", f"input_adapters.{modality}.pos_emb", f"input_adapters.{modality}.proj.weight"]
    missing = [k for k in needed if k not in state]
    if missing or not any(k.startswith("encoder.") for k in state):
        raise CheckpointError(
            f"the checkpoint holds no MultiMAE encoder with a '{modality}' input (missing {missing or ['encoder.*']}); "
            "export needs a MultiMAE/MultiViT checkpoint trained with an rgb input"
        )
    if state["global_tokens"].shape[1] != 1:
        raise CheckpointError(f"timm ViTs have one cls token; this encoder has {state['global_tokens'].shape[1]} "
                              "global tokens")
    out = {"cls_token": state["global_tokens"].clone()}
    pos = state[f"input_adapters.{modality}.pos_emb"]  # 1 x D x h x w
    grid = pos.flatten(2).transpose(1, 2)  # 1 x (h w) x D, row-major like timm's patch order
    out["pos_embed"] = torch.cat([torch.zeros_like(grid[:, :1]), grid], dim=1).contiguous()
    out["patch_embed.proj.weight"] = state[f"input_adapters.{modality}.proj.weight"].clone()
    if f"input_adapters.{modality}.proj.bias" in state:
        out["patch_embed.proj.bias"] = state[f"input_adapters.{modality}.proj.bias"].clone()
    for key, value in state.items():
        if key.startswith("encoder."):
            out["blocks." + key[len("encoder.") :]] = value.clone()
    return out


def is_timm_vit_state(state: dict[str, torch.Tensor]) -> bool:
    """timm's ViT key layout, and not ours (ours has ``global_tokens``, never timm's ``cls_token`` beside it)."""
    return ("global_tokens" not in state and "cls_token" in state and "patch_embed.proj.weight" in state
            and any(k.startswith("blocks.") for k in state))


def timm_to_multivit(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """timm ViT state_dict -> MultiViT encoder keys. Returns (state, dropped keys: norm, head, fc_norm, ...).

    The cls token's position embedding (timm's first ``pos_embed`` row) is dropped: MultiMAE's global token has none.
    Grids must be square.
    """
    out, dropped = {}, []
    pos = state["pos_embed"]
    n_prefix = state["cls_token"].shape[1]
    grid_tokens = pos.shape[1] - n_prefix
    side = int(round(grid_tokens**0.5))
    if side * side != grid_tokens:
        raise CheckpointError(f"timm pos_embed {tuple(pos.shape)} does not hold a square token grid after {n_prefix} "
                              "prefix token(s)")
    out["input_adapters.rgb.pos_emb"] = pos[:, n_prefix:].transpose(1, 2).reshape(1, -1, side, side).contiguous()
    out["global_tokens"] = state["cls_token"]
    for key, value in state.items():
        if key.startswith("blocks."):
            out["encoder." + key[len("blocks.") :]] = value
        elif key.startswith("patch_embed.proj."):
            out["input_adapters.rgb.proj." + key[len("patch_embed.proj.") :]] = value
        elif key not in ("pos_embed", "cls_token"):
            dropped.append(key)
    return out, dropped


def save_safetensors(state: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``state`` as safetensors via a temporary file and an atomic rename (no half-written export)."""
    from safetensors.torch import save_file

    from ..atomic_files import atomic_write_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write_path(path) as tmp:  # save_file wants a name; the file keeps an ordinary file's mode
        save_file({k: v.contiguous() for k, v in state.items()}, tmp, metadata=metadata)
