"""Where fine-tuning starts: find the checkpoint ``init_from`` names, read its weights, work out the encoder it
holds, and load it into a MultiViT with task heads.

Accepted: our pretraining run folders (-> ``pretrained.pth``, else the newest ``checkpoints/step_*.pt``), our
``pretrained.pth`` / ``step_*.pt`` / ``finetuned.pth`` files, official MultiMAE files (MultiMAE or MultiViT layout,
decoders included or not) and timm-format ViT files (converted on the fly). Pretraining decoders
(``output_adapters.<rgb|depth|semseg|norm_rgb>`` cross-attention decoders) are never fine-tuning heads: they are
dropped and reported, as the release's fine-tuning scripts do.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..models.convert import LoadReport, extract_state_dict, load_weights, read_checkpoint
from ..models.factory import SIZES, parse_model_name
from ..models.heads import fill_duplicate_registrations
from ..models.timm_layout import is_timm_vit_state, timm_to_multivit

log = logging.getLogger(__name__)


@dataclass
class InitCheckpoint:
    """Weights (MultiMAE key layout) and what the file says about the model that made them."""

    path: Path
    state: dict[str, torch.Tensor]
    model_config: dict | None  # our files: the model section of the run config; official files: None
    converted_from_timm: bool = False


@dataclass
class EncoderSpec:
    """The encoder architecture a checkpoint needs: a size name or explicit dims, and the patch size."""

    name: str  # multivit_<size>
    patch_size: int
    dim: int | None = None
    depth: int | None = None
    num_heads: int | None = None
    num_global_tokens: int = 1

    def create_kwargs(self) -> dict:
        return dict(patch_size=self.patch_size, dim=self.dim, depth=self.depth, num_heads=self.num_heads,
                     num_global_tokens=self.num_global_tokens)


def resolve_checkpoint_path(init_from: str | Path, label: str = "init_from=") -> Path:
    """A file as is; a run folder -> its pretrained.pth (or finetuned.pth, or its newest checkpoints/step_*.pt)."""
    path = Path(init_from).expanduser()
    if path.is_dir():
        for name in ("pretrained.pth", "finetuned.pth"):
            if (path / name).is_file():
                return path / name
        steps = sorted((path / "checkpoints").glob("step_*.pt")) if (path / "checkpoints").is_dir() else []
        if steps:
            return steps[-1]
        raise CheckpointError(
            f"{label}{path} is a folder without pretrained.pth, finetuned.pth or checkpoints/step_*.pt; give a "
            "finished pretraining run folder or a checkpoint file"
        )
    if not path.exists():
        raise CheckpointError(f"{label}{path}: no such file or folder (check the path)")
    return path


def read_init_checkpoint(init_from: str | Path, label: str = "init_from=") -> InitCheckpoint:
    """``label`` names the setting in messages (``init_from=`` for fine-tuning, ``checkpoint `` for the export)."""
    path = resolve_checkpoint_path(init_from, label)
    raw = read_checkpoint(path)
    state = extract_state_dict(raw, source=str(path))
    config = raw.get("config") if isinstance(raw.get("config"), dict) else None
    if config is not None and isinstance(config.get("model"), dict):
        config = config["model"]  # step_*.pt and finetuned.pth hold the whole run config
    converted = False
    if is_timm_vit_state(state):
        state, dropped = timm_to_multivit(state)
        converted = True
        log.info("%s is a timm ViT state_dict: converted to the MultiMAE layout (dropped %s)", path, dropped)
    if not any(k.startswith("encoder.") for k in state):
        shown = ", ".join(list(state)[:6])
        raise CheckpointError(
            f"{path} holds no MultiMAE/ViT encoder weights (no 'encoder.<i>.*' keys; it has {shown}, ...); give a "
            "MultiMAE or MultiViT checkpoint, one of our runs, or a timm ViT file"
        )
    return InitCheckpoint(path, state, config, converted)


def _count_blocks(state: dict[str, torch.Tensor]) -> int:
    return 1 + max(int(k.split(".")[1]) for k in state if k.startswith("encoder.") and k.split(".")[1].isdigit())


def infer_encoder_spec(ckpt: InitCheckpoint) -> EncoderSpec:
    """The encoder size of a checkpoint: from our run config when present, else from tensor shapes (width from
    ``global_tokens``, depth from the block count, patch size from the rgb/depth patch convolution; heads from the
    size table, or width / 64 for widths not in it)."""
    state = ckpt.state
    dim = int(state["global_tokens"].shape[-1])
    depth = _count_blocks(state)
    num_global = int(state["global_tokens"].shape[1])
    patch = None
    for d in ("rgb", "depth"):
        if f"input_adapters.{d}.proj.weight" in state:
            patch = int(state[f"input_adapters.{d}.proj.weight"].shape[-1])
            break
    cfg = ckpt.model_config or {}
    if patch is None:
        patch = int(cfg.get("patch_size") or 16)
    if cfg.get("name"):
        _, size_name = cfg["name"].split("_", 1)
        size = SIZES.get(size_name)
        if size is not None:
            heads = cfg.get("num_heads") or size.num_heads
            return EncoderSpec(name=f"multivit_{size_name}", patch_size=patch, dim=dim, depth=depth, num_heads=heads,
                               num_global_tokens=num_global)
    for size_name, size in SIZES.items():
        if size.dim == dim and size.depth == depth:
            return EncoderSpec(name=f"multivit_{size_name}", patch_size=patch, num_global_tokens=num_global)
    heads = max(1, dim // 64)
    log.warning("encoder of width %d with %d blocks matches no named size; assuming %d attention heads (width / 64). "
                "Set model.num_heads if that is wrong", dim, depth, heads)
    return EncoderSpec(name="multivit_base", patch_size=patch, dim=dim, depth=depth, num_heads=heads,
                       num_global_tokens=num_global)


def check_requested_model(spec: EncoderSpec, name: str | None, patch_size: int | None, path: Path) -> None:
    """An explicit model.name / model.patch_size must agree with the checkpoint (else every encoder key mismatches)."""
    if patch_size is not None and patch_size != spec.patch_size:
        raise CheckpointError(
            f"model.patch_size={patch_size} but {path} was trained with patch size {spec.patch_size} "
            "(input_adapters.*.proj.weight); set model.patch_size=null to take it from the checkpoint"
        )
    if name is not None:
        _, want = parse_model_name(name)
        have = SIZES[spec.name.split("_", 1)[1]]
        have_dim, have_depth = spec.dim or have.dim, spec.depth or have.depth
        if (want.dim, want.depth) != (have_dim, have_depth):
            raise CheckpointError(
                f"model.name={name} (width {want.dim}, {want.depth} blocks) does not fit {path}: its encoder has "
                f"width {have_dim} and {have_depth} blocks (global_tokens, encoder.<i>.*); set model.name=null to "
                "take the size from the checkpoint"
            )


def load_init_weights(model: torch.nn.Module, ckpt: InitCheckpoint) -> tuple[LoadReport, list[str]]:
    """Load the encoder (and any matching fine-tuning heads) into ``model``.

    Returns (report, dropped pretraining-decoder keys). Shape mismatches raise CheckpointError naming the keys.
    """
    own_heads = {k.split(".")[1] for k in model.state_dict() if k.startswith("output_adapters.")}
    state, decoders = {}, []
    for key, value in ckpt.state.items():
        if key.startswith("output_adapters.") and key.split(".")[1] not in own_heads:
            decoders.append(key)
        elif key.startswith("output_adapters.") and not _belongs_to(model, key):
            decoders.append(key)  # e.g. a pretraining 'depth' decoder while our 'depth' head is a DPT
        else:
            state[key] = value
    if "depth" in own_heads:
        state = fill_duplicate_registrations(state, "output_adapters.depth.")
    report = load_weights(model, state, source=str(ckpt.path))
    loaded_encoder = [k for k in model.state_dict() if k.startswith("encoder.") and k not in report.missing]
    if not loaded_encoder:
        raise CheckpointError(f"{ckpt.path}: none of its weights fit this model's encoder; choose the model size the "
                              "checkpoint was trained with")
    return report, decoders


def _belongs_to(model: torch.nn.Module, key: str) -> bool:
    """Whether ``key`` names a parameter of the head it points into (so a pretraining decoder that shares the head's
    name, 'depth' or 'semseg', is recognised as a decoder and not reported as unexpected head weights)."""
    head = key.split(".")[1]
    prefix = f"output_adapters.{head}."
    own = model.output_adapters[head].state_dict()
    rest = key[len(prefix) :]
    return rest in own or any(rest.startswith(alias) for alias in ("act_", "scratch.layer"))
