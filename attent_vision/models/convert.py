"""Reading weights into our models: official MultiMAE checkpoint files and our own.

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


@dataclass
class LoadReport:
    """What a load did: keys the model lacked in the file, keys the file had that the model does not, and
    position embeddings that were resized to the model's grid."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)

    def summary(self, limit: int = 8) -> str:
        def show(keys):
            return ", ".join(keys[:limit]) + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")

        parts = [f"missing {len(self.missing)}" + (f" [{show(self.missing)}]" if self.missing else "")]
        parts.append(f"unexpected {len(self.unexpected)}" + (f" [{show(self.unexpected)}]" if self.unexpected else ""))
        if self.resized:
            parts.append(f"resized {len(self.resized)} [{show(self.resized)}]")
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
    return F.interpolate(value.float(), size=tuple(target_shape[-2:]), mode="bicubic", align_corners=False).to(value.dtype)


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
    """Read an official MultiMAE file or one of ours from ``path`` into ``model``; returns the LoadReport."""
    state = extract_state_dict(read_checkpoint(path), source=str(path))
    return load_weights(model, state, source=str(path))
