"""The fine-tuning model: a MultiViT encoder with the head of the task's kind, initialised from ``init_from``."""

import logging

from ..errors import CheckpointError
from ..models import create_model
from .init import check_requested_model, infer_encoder_spec, load_init_weights, read_init_checkpoint
from .task_kinds import TASK_KINDS, TaskKind

log = logging.getLogger(__name__)


def build_finetune_model(cfg, num_classes: int | None, kind: TaskKind | None = None):
    """MultiViT + the head of the task's kind (``kind``: the registered kind bound to ``cfg.task``; looked up when
    not given), initialised from ``cfg.init_from`` (or from scratch, with a warning).

    Returns (model, init record for results.json)."""
    m, t = cfg.model, cfg.task
    kind = kind or TASK_KINDS.get(t.kind)(t)
    ckpt = read_init_checkpoint(cfg.init_from) if cfg.init_from else None
    if ckpt is not None:
        spec = infer_encoder_spec(ckpt)
        check_requested_model(spec, m.name, m.patch_size, ckpt.path)
        name, kwargs = spec.name, spec.create_kwargs()
    else:
        log.warning("init_from is not set: training from scratch (random initialisation). Downstream numbers of a "
                    "scratch model are a lower bound, not a pretraining result; set init_from=<checkpoint> to "
                    "fine-tune a pretrained encoder")
        name = m.name or m.scratch_name
        kwargs = dict(patch_size=m.patch_size or m.scratch_patch_size)
    patch = kwargs["patch_size"]
    if m.image_size % patch:
        raise CheckpointError(f"model.image_size={m.image_size} is not a multiple of the checkpoint's patch size "
                              f"{patch}; choose an image size divisible by {patch}")
    heads = {kind.head: kind.head_options(num_classes, patch)}
    model = create_model(name, in_domains=list(t.in_domains), image_size=m.image_size,
                         drop_path_rate=m.drop_path_rate, heads=heads, **kwargs)
    record = {"init_from": str(ckpt.path) if ckpt else None, "model": name, "patch_size": patch}
    if ckpt is not None:
        report, decoders = load_init_weights(model, ckpt)
        missing_encoder = [k for k in report.missing if not k.startswith("output_adapters.")]
        log.info("initialised from %s: %s; %d pretraining-decoder keys dropped%s", ckpt.path, report.summary(),
                 len(decoders), " (converted from the timm layout)" if ckpt.converted_from_timm else "")
        if missing_encoder:
            log.warning("the checkpoint lacks %d encoder/adapter weights, trained from scratch: %s",
                        len(missing_encoder), ", ".join(missing_encoder[:6]))
        missing_head = [k for k in report.missing if k.startswith("output_adapters.")]
        if cfg.trainer.epochs == 0 and missing_head:
            raise CheckpointError(
                f"trainer.epochs=0 evaluates init_from as it is, but {ckpt.path} holds no trained '{t.kind}' head "
                f"(missing {missing_head[0]}, ...); give a fine-tuned checkpoint (<run>/finetuned.pth) or train "
                "with trainer.epochs >= 1"
            )
        record.update(missing=report.missing, unexpected=report.unexpected, resized=report.resized,
                      dropped_decoder_keys=len(decoders), converted_from_timm=ckpt.converted_from_timm)
    return model, record
