"""Where fine-tuning starts: find the checkpoint ``init_from`` names, read its weights, work out the encoder it
holds, and load it into a MultiViT with task heads.

Accepted: our run folders (-> their final weights, ``pretrained.pth`` or ``finetuned.pth``), our
``pretrained.pth`` / ``step_*.pt`` / ``finetuned.pth`` files, official MultiMAE files (MultiMAE or MultiViT layout,
decoders included or not) and timm-format ViT files (converted on the fly). Pretraining decoders
(``output_adapters.<rgb|depth|semseg|norm_rgb>`` cross-attention decoders) are never fine-tuning heads: they are
dropped and reported, as the release's fine-tuning scripts do.

A run folder without final weights belongs to a run that did not finish: interrupted, still running, crashed,
failed or diverged. Its newest ``checkpoints/step_*.pt`` would be weights of a few of the planned steps, and
fine-tuning them silently would report a half-trained encoder as the pretraining's result; so such a folder is
refused in one line that says the run's state (results.json and the folder's lock) and the two ways on: name a
checkpoint file explicitly (fine-tuned with a warning that says how far its run got), or finish the pretraining.
"""

import json
import logging
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import torch

from ..engine.checkpoint import verify_checksums
from ..engine.results import COMPLETED, DIVERGED, FAILED, INTERRUPTED, RUNNING, read_results
from ..errors import CheckpointError, UnreadableCheckpoint
from ..models.convert import LoadReport, extract_state_dict, load_weights, read_checkpoint
from ..models.factory import SIZES, parse_model_name
from ..models.heads import fill_duplicate_registrations
from ..models.timm_layout import is_timm_vit_state, timm_to_multivit
from ..processes import process_runs
from ..storage import reading

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


FINAL_WEIGHTS = ("pretrained.pth", "finetuned.pth")  # what a run folder holds once its run completed
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")


def resolve_checkpoint_path(init_from: str | Path, label: str = "init_from=") -> Path:
    """A file as is; a run folder -> its final weights (pretrained.pth, else finetuned.pth). A run folder without
    them (its run did not finish) is a CheckpointError saying the run's state and naming its newest checkpoint."""
    path = Path(init_from).expanduser()
    if path.is_dir():
        for name in FINAL_WEIGHTS:
            if (path / name).is_file():
                return path / name
        steps = sorted((path / "checkpoints").glob("step_*.pt")) if (path / "checkpoints").is_dir() else []
        if steps:
            state, remedy = unfinished_run_state(path)
            raise CheckpointError(
                f"{label}{path} holds no final weights (pretrained.pth or finetuned.pth): {state}; to use "
                f"its unfinished weights name a checkpoint file explicitly ({label}{steps[-1]}), or {remedy}"
            )
        raise CheckpointError(
            f"{label}{path} is a folder without pretrained.pth, finetuned.pth or checkpoints/step_*.pt; give a "
            "finished pretraining run folder or a checkpoint file"
        )
    if not path.exists():
        raise CheckpointError(f"{label}{path}: no such file or folder (check the path)")
    return path


def _run_results(run_dir: Path) -> dict | None:
    """The run's results.json, None when there is none or it cannot be read (e.g. cut short by a kill)."""
    try:
        results = read_results(run_dir / "results.json")
    except (OSError, ValueError):
        return None
    return results if isinstance(results, dict) else None


def _lock_holder(run_dir: Path) -> dict | None:
    """{"pid", "host"} of the process that holds the run folder now (engine/run_lock.py keeps them in ``.lock`` while
    it holds it and empties the file when it ends); None when no live process does. The file is only read: taking
    the lock to test it could make the run it belongs to refuse to start. A holder on another host cannot be
    checked from here and counts as live."""
    try:
        holder = json.loads((run_dir / ".lock").read_text() or "{}")
    except (OSError, ValueError):
        return None
    pid, host = holder.get("pid"), holder.get("host")
    if not isinstance(pid, int):
        return None
    if host == socket.gethostname() and not process_runs(pid):
        return None
    return holder


def _steps(results: dict) -> str:
    done, planned = results.get("optimizer_steps"), results.get("planned_optimizer_steps")
    return f"step {done} of {planned}" if done is not None and planned else f"step {done}" if done is not None else ""


def unfinished_run_state(run_dir: Path) -> tuple[str, str]:
    """(what state the run of ``run_dir`` is in, what to do to finish it), in words for one message line."""
    results = _run_results(run_dir) or {}
    holder = _lock_holder(run_dir)
    status = results.get("status")
    at = f" at {_steps(results)}" if _steps(results) else ""
    stage, weights = ("fine-tuning", "finetuned.pth") if results.get("stage") == "finetune" else (
        "pretraining", "pretrained.pth")
    resume = f"resume the {stage} to finish it (rerun its command with hydra.run.dir={run_dir})"
    if holder is not None:
        return (f"its run is still running{at} (pid {holder.get('pid')} on {holder.get('host')} holds the folder)",
                f"wait for it to finish ({weights} is written when it ends; if that process is gone, e.g. its node "
                "died, name a checkpoint file explicitly)")
    if status == INTERRUPTED:
        code = results.get("exit_code") or 0
        by = f"by signal {code - 128}" if code > 128 else "by trainer.stop_after_steps"
        return f"its run was interrupted{at} ({by})", resume
    if status == RUNNING:
        ended = (f"its run ended without finishing{at} (results.json says running but no process holds the folder: "
                 "killed or crashed)")
        return ended, resume
    if status == FAILED:
        return f"its run failed{at} ({results.get('error', 'see its log')})", f"fix that, then {resume}"
    if status == DIVERGED:
        what = results.get("diverged") or {}
        return (f"its run diverged (non-finite {what.get('what', 'values')} at step {what.get('step', '?')})",
                f"rerun the {stage} with other settings (e.g. a lower optim.blr)")
    if status == COMPLETED:
        return f"its run completed, but {weights} is missing (moved or deleted)", f"put {weights} back"
    return "it has no readable results.json, so whether its run finished is unknown", resume


def warn_if_unfinished(path: Path, raw: dict, label: str) -> None:
    """A training checkpoint (``step_*.pt``: it carries ``progress``) named explicitly is fine-tuned as asked, with a
    warning saying how far its run got (step N of M planned, from its run's results.json when it is beside it)."""
    if not isinstance(raw.get("progress"), dict):
        return  # final weights, or a file of another project
    step = raw["progress"].get("global_step")
    if step is None and _STEP_FILE.match(path.name):
        step = int(_STEP_FILE.match(path.name).group(1))
    results = (_run_results(path.parent.parent) if path.parent.name == "checkpoints" else None) or {}
    planned, status = results.get("planned_optimizer_steps"), results.get("status")
    if planned and step is not None and step >= planned:
        log.info("%s%s is the checkpoint of its run's last step (%s of %s)", label, path, step, planned)
        return
    where = f"step {step} of {planned} planned" if planned else f"step {step}, of an unknown number planned"
    log.warning("%s%s is an unfinished training checkpoint (%s%s), not the final weights of a finished run: "
                "fine-tuning weights whose training stopped there", label, path, where,
                f"; its run {status}" if status else "")


def read_init_checkpoint(init_from: str | Path, label: str = "init_from=") -> InitCheckpoint:
    """``label`` names the setting in messages (``init_from=`` for fine-tuning, ``checkpoint `` for the export)."""
    # A permission problem is "cannot read" with its remedy, not "not a readable PyTorch checkpoint" (torch's
    # loader reports every failure alike) and never a run folder's "cannot write" (storage.py).
    setting = label[:-1] if label.endswith("=") else f"the {label.strip()} argument"
    with reading(init_from, setting):
        path = resolve_checkpoint_path(init_from, label)
        if path.is_file():
            open(path, "rb").close()
    try:  # the CRC-32 of every record torch.save wrote: bytes flipped on disk load silently otherwise
        verify_checksums(path)
    except UnreadableCheckpoint as e:
        raise CheckpointError(f"{label}{path} is corrupt ({e.reason}): the file was changed or damaged after it was "
                              "saved; use an intact copy, or an earlier checkpoint of its run") from None
    raw = read_checkpoint(path)
    warn_if_unfinished(path, raw, label)
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
