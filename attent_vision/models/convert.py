"""Reading weights into our models: official MultiMAE checkpoint files, our own, and timm ViT files (such as
``attent-export-timm`` exports), whose encoder is converted to our layout on the fly.

Official files are dicts whose ``model`` entry holds the state_dict; they also pickle an ``argparse.Namespace``.
We load them with ``torch.load(weights_only=True)`` and allow exactly that one class, so no arbitrary code from a
checkpoint file runs. Our own checkpoints store plain containers and load the same way.
"""

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import CheckpointError, UnreadableCheckpoint
from .timm_layout import is_timm_vit_state, timm_to_multivit


@dataclass
class LoadReport:
    """What a load did: keys the model lacked in the file, keys the file had that the model does not, and
    position embeddings that were resized to the model's grid."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)
    converted_from_timm: bool = False  # the file held a timm ViT state_dict, converted to our key layout

    def summary(self, limit: int = 8) -> str:
        def show(keys):
            return ", ".join(keys[:limit]) + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")

        parts = [f"missing {len(self.missing)}" + (f" [{show(self.missing)}]" if self.missing else "")]
        parts.append(f"unexpected {len(self.unexpected)}" + (f" [{show(self.unexpected)}]" if self.unexpected else ""))
        if self.resized:
            parts.append(f"resized {len(self.resized)} [{show(self.resized)}]")
        if self.converted_from_timm:
            parts.append("converted from the timm ViT layout")
        return "; ".join(parts)


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint file safely (tensors, containers and argparse.Namespace only).

    Raises CheckpointError naming the file when it is missing or is not a torch checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path} (check the path; it must be a .pth/.pt file)")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt or foreign files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Weights only" in str(e):  # never pass on torch's advice to load unsafely
            first = "it is not a checkpoint of tensors (or holds arbitrary Python objects, which are not loaded)"
        raise UnreadableCheckpoint(
            f"{path} is not a readable PyTorch checkpoint ({first}); give a file saved by attent-vision or a "
            "MultiMAE release file", first
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict with model weights")
    return obj


def extract_state_dict(ckpt: dict, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Find the model weights in a checkpoint dict (``model``, ``state_dict`` or the dict itself) and strip a
    DistributedDataParallel ``module.`` prefix."""
    for key in ("model", "state_dict", "model_state"):
        if isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
            break
    state = {k: v for k, v in ckpt.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise CheckpointError(f"{source} holds no tensors under 'model', 'state_dict' or at the top level")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _resize_grid_embedding(value: torch.Tensor, target_shape: torch.Size) -> torch.Tensor:
    """(1, D, h, w) -> (1, D, H, W) by bicubic interpolation (position embeddings of another image size)."""
    return F.interpolate(value.float(), size=tuple(target_shape[-2:]), mode="bicubic",
                         align_corners=False).to(value.dtype)


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> LoadReport:
    """Copy matching weights into ``model`` (non-strict) and report what did not match.

    Position embeddings (``*pos_emb``) of another grid size are interpolated. Any other key present on both sides
    with different shapes is an error listing those keys: it means the checkpoint is for a different model size or
    modality set.
    """
    own = model.state_dict()
    report = LoadReport()
    to_load, mismatched = {}, []
    for key, value in state.items():
        if key not in own:
            report.unexpected.append(key)
        elif value.shape == own[key].shape:
            to_load[key] = value
        elif key.endswith("pos_emb") and value.dim() == 4 and value.shape[:2] == own[key].shape[:2]:
            to_load[key] = _resize_grid_embedding(value, own[key].shape)
            report.resized.append(key)
        else:
            mismatched.append(f"{key} {tuple(value.shape)} vs model {tuple(own[key].shape)}")
    if mismatched:
        shown = "; ".join(mismatched[:5]) + (f"; ... ({len(mismatched)} in all)" if len(mismatched) > 5 else "")
        raise CheckpointError(
            f"{source} does not fit this model: {shown}. Choose the model size, patch size and modalities the "
            "checkpoint was trained with"
        )
    report.missing = [k for k in own if k not in to_load]
    model.load_state_dict(to_load, strict=False)
    return report


def load_pretrained(model: nn.Module, path: str | Path) -> LoadReport:
    """Read an official MultiMAE file, one of ours, or a timm ViT file (``attent-export-timm`` output, MAE weights)
    from ``path`` into ``model``; returns the LoadReport.

    A timm file is converted to our layout with the conversion ``finetune.py init_from=`` uses: its encoder fills the
    model's encoder and rgb input adapter; keys timm has and we do not (``norm.*``, heads) are reported as unexpected.
    Raises CheckpointError when no key of the file fits the model (a file of another model family, whose load would
    otherwise leave the model untouched), or when a timm file meets a model without an rgb input.
    """
    state = extract_state_dict(read_checkpoint(path), source=str(path))
    own = model.state_dict()
    converted, dropped = False, []
    if is_timm_vit_state(state):
        if "input_adapters.rgb.proj.weight" not in own:
            raise CheckpointError(
                f"{path} is a timm ViT file (an rgb encoder), but this model has no rgb input adapter; load it into "
                "a model with 'rgb' in in_domains, or fine-tune from it with finetune.py init_from=" + str(path)
            )
        state, dropped = timm_to_multivit(state)
        converted = True
    if not set(state) & set(own):
        def some(keys):
            return ", ".join(list(keys)[:3]) + (", ..." if len(keys) > 3 else "")

        raise CheckpointError(
            f"no key of {path} matches this {type(model).__name__} (the file has {some(state)}; the model "
            f"{some(own)}); give a MultiMAE/MultiViT checkpoint (official or ours) or a timm ViT file"
        )
    report = load_weights(model, state, source=str(path))
    report.unexpected += dropped
    report.converted_from_timm = converted
    return report
