"""The fine-tuning schema (finetune.py, conf/finetune/finetune.yaml) and its range checks.

The dataclasses are registered in Hydra's ConfigStore as ``finetune_schema`` (first in conf/finetune/finetune.yaml's
defaults), so a typo or a wrongly typed value fails before any work starts. :func:`validate_finetune_config` checks
what types cannot express and raises a ConfigError naming the key, the value and the rule. ``task.kind`` and
``data.name`` name registered entries (finetuning/task_kinds/, data/downstream/datasets/): the checks that depend
on the kind read its traits and its own ``config_problems``.
"""

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig

from ..data.downstream.datasets import DOWNSTREAM_DATASETS
from ..finetuning.task_kinds import TASK_KINDS
from .common import (
    CheckpointConfig,
    LoggerConfig,
    OptimConfig,
    TrainerConfig,
    check_choices,
    is_pair,
    require,
    validate_common,
)
from .downstream_data import DownstreamDataConfig


@dataclass
class MixupConfig:
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    prob: float = 1.0
    switch_prob: float = 0.5
    mode: str = "batch"


@dataclass
class AugmentConfig:
    # classification (timm's create_transform)
    crop_scale: list[float] = field(default_factory=lambda: [0.08, 1.0])
    crop_ratio: list[float] = field(default_factory=lambda: [0.75, 1.3333333])
    auto_augment: Optional[str] = None
    interpolation: str = "bicubic"
    re_prob: float = 0.0
    crop_pct: float = 0.875
    # dense tasks (joint transforms of image and labels)
    mode: str = "lsj"
    scale_range: list[float] = field(default_factory=lambda: [0.1, 2.0])
    jitter_prob: float = 0.5
    gray_prob: float = 0.0
    # both
    hflip_prob: float = 0.5
    color_jitter: list[float] = field(default_factory=lambda: [0.4, 0.4, 0.2, 0.1])


@dataclass
class HeadConfig:
    # cls
    mean_pooling: bool = True
    init_scale: float = 0.001
    # semseg (ConvNeXt adapter)
    embed_dim: int = 6144
    preds_per_patch: Optional[int] = None
    depth: int = 4
    # depth (DPT)
    feature_dim: int = 256
    layer_dims: Optional[list[int]] = None
    hooks: Optional[list[int]] = None
    # dense heads
    main_tasks: list[str] = field(default_factory=lambda: ["rgb"])


@dataclass
class TaskConfig:
    name: str = "imagenet_s50_cls"
    kind: str = "cls"  # a registered task kind (finetuning/task_kinds/): what the task is, fixed per task
    num_classes: Optional[int] = None
    in_domains: list[str] = field(default_factory=lambda: ["rgb"])
    loss: str = "cross_entropy"
    label_smoothing: float = 0.0
    depth_protocol: str = "standard"
    mixup: MixupConfig = field(default_factory=MixupConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    head: HeadConfig = field(default_factory=HeadConfig)


@dataclass
class FinetuneModelConfig:
    name: Optional[str] = None
    patch_size: Optional[int] = None
    image_size: int = 224
    drop_path_rate: float = 0.0
    scratch_name: str = "multivit_base"
    scratch_patch_size: int = 16


@dataclass
class FinetuneOptimConfig(OptimConfig):
    blr: Optional[float] = 5e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_epochs: float = 5.0
    warmup_lr: float = 1e-6  # learning rate at step 0 of the warm-up
    layer_decay: float = 0.65  # block i gets lr * decay^(depth - i); heads get lr


@dataclass
class FinetuneTrainerConfig(TrainerConfig):
    epochs: int = 100
    batch_size: int = 1024
    eval_batch_size: int = 256


@dataclass
class FinetuneConfig:
    init_from: Optional[str] = None
    task: TaskConfig = field(default_factory=TaskConfig)
    model: FinetuneModelConfig = field(default_factory=FinetuneModelConfig)
    data: DownstreamDataConfig = field(default_factory=DownstreamDataConfig)
    optim: FinetuneOptimConfig = field(default_factory=FinetuneOptimConfig)
    trainer: FinetuneTrainerConfig = field(default_factory=FinetuneTrainerConfig)
    checkpoint: CheckpointConfig = field(default_factory=lambda: CheckpointConfig(keep_last=1))
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    experiment_name: str = "finetune"
    extra: dict[str, Any] = field(default_factory=dict)  # the user's own keys (+extra.note=...): kept, never read
    extensions: list[str] = field(default_factory=list)  # modules imported first: they register scores, datasets...


CHOICES = {
    "task.depth_protocol": ("standard", "multimae"),
    "task.mixup.mode": ("batch", "pair", "elem"),
    "task.augment.mode": ("lsj", "short_side_crop"),
    "task.augment.interpolation": ("bilinear", "bicubic", "random"),
}


def validate_finetune_config(cfg: DictConfig) -> None:
    """Raise ConfigError (key, value, rule) for values the schema's types let through."""
    from ..models.domains import FINETUNE_INPUT_DOMAINS
    from ..models.factory import parse_model_name

    validate_common(cfg)
    check_choices(cfg, CHOICES)
    dataset = DOWNSTREAM_DATASETS.get(cfg.data.name)  # an unknown name: one line listing the registered ones
    require(dataset.reads_root or cfg.data.root is None, "data.root", cfg.data.root,
            f"data.name={cfg.data.name} ({dataset.description}) is generated, not read from a folder; to fine-tune "
            "on your data choose a data= config that reads one (e.g. data=imagenet_s50_downstream, data=nyuv2), or "
            "to choose where generated data is cached set data.cache_dir=... (or $ATTENT_VISION_CACHE)")
    t, m, o, tr = cfg.task, cfg.model, cfg.optim, cfg.trainer
    kind = TASK_KINDS.get(t.kind)
    require(t.loss in kind.losses, "task.loss", t.loss, f"a {t.kind} task takes one of {list(kind.losses)}")
    require(t.num_classes is None or t.num_classes >= 2, "task.num_classes", t.num_classes, "must be >= 2 or null")
    require(len(t.in_domains) >= 1 and all(d in FINETUNE_INPUT_DOMAINS for d in t.in_domains),
            "task.in_domains", list(t.in_domains), f"a non-empty list of {list(FINETUNE_INPUT_DOMAINS)}")
    for key, value, rule in kind.config_problems(cfg):  # what this kind refuses beyond its traits
        raise_config(key, value, rule)
    require(all(d in t.in_domains for d in t.head.main_tasks) and len(t.head.main_tasks) >= 1, "task.head.main_tasks",
            list(t.head.main_tasks), f"must be a non-empty subset of task.in_domains={list(t.in_domains)}")
    require(0 <= t.label_smoothing < 1, "task.label_smoothing", t.label_smoothing, "must be in [0, 1)")
    require(t.mixup.mixup_alpha >= 0 and t.mixup.cutmix_alpha >= 0, "task.mixup.mixup_alpha", t.mixup.mixup_alpha,
            "mixup and cutmix alphas must be >= 0 (0 = off)")
    require(kind.mixup or (t.mixup.mixup_alpha == 0 and t.mixup.cutmix_alpha == 0), "task.mixup.mixup_alpha",
            t.mixup.mixup_alpha, f"mixup/cutmix apply only to the task kinds {mixup_kinds()}")
    a = t.augment
    require(is_pair(a.crop_scale, lambda v: v > 0) and a.crop_scale[1] <= 1, "task.augment.crop_scale",
            list(a.crop_scale), "must be [min, max] with 0 < min <= max <= 1")
    require(is_pair(a.crop_ratio, lambda v: v > 0), "task.augment.crop_ratio", list(a.crop_ratio),
            "must be [min, max] with 0 < min <= max")
    require(is_pair(a.scale_range, lambda v: v > 0), "task.augment.scale_range", list(a.scale_range),
            "must be [min, max] with 0 < min <= max")
    require(0 < a.crop_pct <= 1, "task.augment.crop_pct", a.crop_pct, "must be in (0, 1]")
    require(all(0 <= p <= 1 for p in (a.hflip_prob, a.jitter_prob, a.gray_prob, a.re_prob)), "task.augment.hflip_prob",
            a.hflip_prob, "probabilities (hflip_prob, jitter_prob, gray_prob, re_prob) must be in [0, 1]")
    require(len(a.color_jitter) == 4 and all(v >= 0 for v in a.color_jitter) and a.color_jitter[3] <= 0.5,
            "task.augment.color_jitter", list(a.color_jitter), "must be [brightness, contrast, saturation, hue >= 0, "
            "hue <= 0.5]")
    h = t.head
    require(h.preds_per_patch is None or h.preds_per_patch >= 1, "task.head.preds_per_patch", h.preds_per_patch,
            "must be a square number >= 1 or null")
    require(h.layer_dims is None or len(h.layer_dims) == 4, "task.head.layer_dims", h.layer_dims, "four widths or null")
    require(h.hooks is None or len(h.hooks) == 4, "task.head.hooks", h.hooks, "four block indices or null")

    if m.name is not None:
        try:
            family, _ = parse_model_name(m.name)
        except ValueError as e:
            raise_config("model.name", m.name, str(e))
        require(family == "multivit", "model.name", m.name, "fine-tuning builds a multivit_<size>")
    try:
        parse_model_name(m.scratch_name)
    except ValueError as e:
        raise_config("model.scratch_name", m.scratch_name, str(e))
    patch = m.patch_size or m.scratch_patch_size
    require(m.image_size > 0 and m.image_size % patch == 0, "model.image_size", m.image_size,
            f"must be a positive multiple of the patch size {patch}")
    require(0 <= m.drop_path_rate < 1, "model.drop_path_rate", m.drop_path_rate, "must be in [0, 1)")

    require(0 < o.layer_decay <= 1, "optim.layer_decay", o.layer_decay, "must be in (0, 1] (1 = no decay)")
    require(o.warmup_lr >= 0, "optim.warmup_lr", o.warmup_lr, "must be >= 0")

    require(tr.epochs >= 0, "trainer.epochs", tr.epochs, "must be >= 0 (0 = evaluate init_from only)")
    require(t.mixup.mixup_alpha + t.mixup.cutmix_alpha == 0 or tr.batch_size % 2 == 0,
            "trainer.batch_size", tr.batch_size, "mixup/cutmix (timm) need an even batch size")
    require(tr.epochs >= 1 or cfg.init_from, "trainer.epochs", tr.epochs,
            "evaluation only (epochs=0) needs init_from=<a fine-tuned checkpoint>")


def mixup_kinds() -> list[str]:
    return [name for name, kind in TASK_KINDS.items() if kind.mixup]


def raise_config(key, value, rule):
    """Raise the ConfigError of ``require`` unconditionally."""
    require(False, key, value, rule)
