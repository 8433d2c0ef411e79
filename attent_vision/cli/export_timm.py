"""Export the encoder of a MultiMAE/MultiViT checkpoint as a timm ``vit_*`` state_dict (safetensors).

    python -m attent_vision.cli.export_timm <checkpoint or run folder> --out encoder.safetensors \
        [--model vit_base_patch16_224]
    attent-export-timm outputs/default/<run> --out encoder.safetensors

The export is checked before it is written: a timm model (created with pretrained=False, nothing downloaded) must
load it strictly except its final ``norm`` (MultiMAE has none). The command prints the ``timm.create_model`` call
that loads it; the same call is stored in the file's metadata. Load it with:

    import timm, safetensors.torch
    model = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0)
    model.load_state_dict(safetensors.torch.load_file("encoder.safetensors"), strict=False)  # misses norm.*
    model.norm = torch.nn.Identity()   # for features identical to the MultiMAE encoder's
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from ..errors import CheckpointError, UserError

log = logging.getLogger("attent_vision.cli.export_timm")

TIMM_SIZES = {"tiny": "vit_tiny", "small": "vit_small", "base": "vit_base", "large": "vit_large"}
ALLOWED_MISSING = {"norm.weight", "norm.bias"}


def timm_model_for(spec, grid: int, model: str | None) -> tuple[str, dict]:
    """(timm model name, create_model keyword arguments) that build a ViT of the checkpoint's shape."""
    import timm

    from ..models.factory import SIZES

    size_name = spec.name.split("_", 1)[1]
    size = SIZES[size_name]
    dim, depth, heads = spec.dim or size.dim, spec.depth or size.depth, spec.num_heads or size.num_heads
    kwargs = {"num_classes": 0, "img_size": grid * spec.patch_size}
    if model is None:
        standard = f"{TIMM_SIZES.get(size_name, '')}_patch{spec.patch_size}_224"
        if size_name in TIMM_SIZES and standard in timm.list_models() and (dim, depth) == (size.dim, size.depth):
            return standard, kwargs
        model = "vit_base_patch16_224"  # a plain ViT; the keyword arguments below set its shape
        kwargs.update(embed_dim=dim, depth=depth, num_heads=heads, patch_size=spec.patch_size)
    return model, kwargs


def export(checkpoint: str | Path, out: str | Path, model: str | None = None) -> tuple[str, dict]:
    """Write the timm state_dict of ``checkpoint``'s encoder to ``out``; returns (timm name, create kwargs)."""
    import timm

    from ..finetuning.init import infer_encoder_spec, read_init_checkpoint
    from ..models.timm_layout import multivit_to_timm, save_safetensors

    ckpt = read_init_checkpoint(checkpoint, label="checkpoint ")
    spec = infer_encoder_spec(ckpt)
    state = multivit_to_timm(ckpt.state)
    grid = ckpt.state["input_adapters.rgb.pos_emb"].shape[-1]
    name, kwargs = timm_model_for(spec, grid, model)
    try:
        vit = timm.create_model(name, pretrained=False, **kwargs)
    except Exception as e:  # unknown model names and bad keyword arguments
        raise CheckpointError(f"timm cannot build '{name}' with {kwargs}: {e}") from None
    try:
        result = vit.load_state_dict(state, strict=False)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        shapes = "; ".join(line.strip() for line in first if "size mismatch" in line)[:400]
        raise CheckpointError(
            f"{ckpt.path}'s encoder does not fit timm '{name}' ({shapes}); leave out --model to derive a matching "
            "ViT from the checkpoint"
        ) from None
    missing = set(result.missing_keys) - ALLOWED_MISSING
    if missing or result.unexpected_keys:
        raise CheckpointError(f"timm '{name}' did not take the export strictly: missing {sorted(missing)[:5]}, "
                              f"unexpected {result.unexpected_keys[:5]}")
    meta = {"timm_model": name, "create_model_kwargs": json.dumps(kwargs), "source": str(ckpt.path),
            "note": "no final norm: load with strict=False (norm.* missing); "
                    "norm=Identity reproduces MultiMAE features"}
    save_safetensors(state, out, metadata=meta)
    return name, kwargs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attent-export-timm", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="our run folder / pretrained.pth / step_*.pt / finetuned.pth, or an "
                                           "official MultiMAE .pth")
    parser.add_argument("--out", required=True, help="output .safetensors file")
    parser.add_argument("--model", default=None, help="timm model name to check against (default: derived from the "
                                                     "checkpoint, e.g. vit_base_patch16_224)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        name, kwargs = export(args.checkpoint, args.out, args.model)
    except UserError as e:
        log.error("error: %s", e)
        return 2
    call = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    log.info("wrote %s\nload it with: timm.create_model(%r, pretrained=False, %s); "
             "model.load_state_dict(safetensors.torch.load_file(%r), strict=False)  # norm.* stays missing",
             args.out, name, call, str(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
