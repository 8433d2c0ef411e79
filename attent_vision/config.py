"""Structured config schemas for Hydra.

The dataclasses below are registered in Hydra's ConfigStore and sit first in each entry point's defaults list,
so every YAML file and command-line override is merged onto a typed schema: an unknown key or a value of the wrong
type fails before any work starts, naming the key. Range and consistency checks that types cannot express live in
:func:`validate_train_config`, which the entry points call first and which raises a ConfigError naming the key.
"""

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError


@dataclass
class ModelConfig:
    name: str = "multimae_nano"
    image_size: int = 64
    patch_size: int = 8
    in_domains: list[str] = field(default_factory=lambda: ["rgb", "depth", "semseg"])
    out_domains: list[str] = field(default_factory=lambda: ["rgb", "depth", "semseg"])
    num_encoded_tokens: Optional[int] = None
    alpha: float = 1.0
    sample_tasks_uniformly: bool = False
    dim: Optional[int] = None
    depth: Optional[int] = None
    num_heads: Optional[int] = None
    decoder_dim: Optional[int] = None
    decoder_depth: Optional[int] = None
    decoder_heads: Optional[int] = None
    semseg_num_classes: int = 133
    drop_path_rate: float = 0.0
    loss_weights: dict[str, float] = field(default_factory=dict)
    loss_on_unmasked: bool = False
    init_from: Optional[str] = None


@dataclass
class SyntheticConfig:
    num_train: int = 1024
    num_val: int = 128
    image_size: Optional[int] = None
    num_classes: int = 10
    max_objects: int = 5
    max_noise: float = 0.25
    duplicate_fraction: float = 0.1
    seed: int = 0


@dataclass
class DataConfig:
    name: str = "synthetic"
    root: Optional[str] = None
    train_split: str = "train"
    val_split: Optional[str] = "val"
    max_val_samples: Optional[int] = None
    num_workers: int = 2
    pin_memory: bool = True
    persistent_workers: bool = True
    prefetch_factor: int = 4
    skip_bad_samples: bool = False
    crop_scale: list[float] = field(default_factory=lambda: [0.2, 1.0])
    crop_ratio: list[float] = field(default_factory=lambda: [0.75, 1.3333333])
    hflip_prob: float = 0.5
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class OptimConfig:
    name: str = "adamw"
    blr: float = 1e-4
    lr: Optional[float] = None
    min_lr: float = 1e-6
    warmup_epochs: float = 40.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    weight_decay: float = 0.05
    decay_norm_and_bias: bool = True
    clip_grad: Optional[float] = None
    fused: str = "auto"


@dataclass
class RatioConfig:
    schedule: str = "incremental"
    initial_ratio: float = 0.2
    final_ratio: float = 0.8


@dataclass
class IntervalConfig:
    schedule: str = "incremental"
    initial_interval: int = 5
    max_interval: int = 10


@dataclass
class SelectionConfig:
    strategy: str = "soft"
    temperature: float = 1.0
    normalization: str = "softmax"
    reselect_every_subset_epoch: bool = True


@dataclass
class TeachingConfig:
    total_cycles: int = 10
    scoring_view: str = "deterministic"
    score_source: str = "pass"
    scoring_batch_size: Optional[int] = None


@dataclass
class TrainerConfig:
    epochs: int = 40
    batch_size: int = 64
    micro_batch_size: Optional[int] = None
    eval_batch_size: int = 128
    precision: str = "auto"
    compile: bool = False
    device: str = "auto"
    seed: int = 0
    log_every_steps: int = 20
    val_every_epochs: int = 1
    vis_every_epochs: int = 0
    num_vis_samples: int = 4
    progress_bar: bool = True
    stop_after_steps: Optional[int] = None


@dataclass
class CheckpointConfig:
    resume: str = "auto"
    every_epochs: int = 1
    every_steps: Optional[int] = None
    keep_last: int = 2


@dataclass
class LoggerConfig:
    mode: str = "disabled"
    project: str = "attent-vision"
    entity: Optional[str] = None
    name: Optional[str] = None
    group: Optional[str] = None
    tags: list[str] = field(default_factory=list)


@dataclass
class DownstreamConfig:
    tasks: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    ratio: RatioConfig = field(default_factory=RatioConfig)
    interval: IntervalConfig = field(default_factory=IntervalConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    teaching: TeachingConfig = field(default_factory=TeachingConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    downstream: DownstreamConfig = field(default_factory=DownstreamConfig)
    experiment_name: str = "default"


def register_configs() -> None:
    """Make the schemas available to Hydra defaults lists (``- train_schema`` in conf/train.yaml)."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)


# ----------------------------------------------------------------------------------------------------------------
# Range and consistency checks (types are already enforced by the schema).

CHOICES = {
    "data.name": ("synthetic", "folder"),
    "optim.name": ("adamw",),
    "optim.fused": ("auto", "true", "false"),
    "ratio.schedule": ("constant", "cosine", "incremental"),
    "interval.schedule": ("fixed", "incremental"),
    "selection.strategy": ("none", "random", "hard", "soft"),
    "selection.normalization": ("softmax", "sigmoid", "zscore", "rank"),
    "teaching.scoring_view": ("deterministic", "paper"),
    "teaching.score_source": ("pass", "training"),
    "trainer.precision": ("auto", "fp32", "bf16", "fp16"),
    "logger.mode": ("disabled", "offline", "online"),
}


def _get(cfg: Any, dotted: str) -> Any:
    return OmegaConf.select(cfg, dotted) if isinstance(cfg, DictConfig) else _get_attr(cfg, dotted)


def _get_attr(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _require(condition: bool, key: str, value: Any, rule: str) -> None:
    if not condition:
        raise ConfigError(f"config key {key}={value!r} is invalid: {rule}")


def check_choices(cfg: Any, choices: dict[str, tuple]) -> None:
    for key, allowed in choices.items():
        value = _get(cfg, key)
        value = str(value).lower() if isinstance(value, bool) else value
        _require(value in allowed, key, value, f"choose one of {list(allowed)}")


def validate_train_config(cfg: DictConfig) -> None:
    """Raise ConfigError (naming the key, the value and the rule) for values the schema's types let through."""
    from .models.domains import check_domains
    from .models.factory import parse_model_name

    check_choices(cfg, CHOICES)
    try:
        parse_model_name(cfg.model.name)
        check_domains(list(cfg.model.in_domains), list(cfg.model.out_domains))
    except ValueError as e:
        raise ConfigError(f"config group model: {e}") from None
    _require(cfg.model.name.startswith("multimae_"), "model.name", cfg.model.name, "pretraining needs a multimae_<size>")
    m = cfg.model
    _require(m.image_size > 0 and m.patch_size > 0 and m.image_size % m.patch_size == 0, "model.image_size",
             m.image_size, f"must be a positive multiple of model.patch_size={m.patch_size}")
    _require(m.patch_size % 4 == 0 or "semseg" not in m.in_domains, "model.patch_size", m.patch_size,
             "must be divisible by 4 when semseg is an input (its labels are stored at 1/4 resolution)")
    _require(m.alpha > 0, "model.alpha", m.alpha, "the Dirichlet concentration must be > 0")
    for task in m.loss_weights:
        _require(task in m.out_domains, f"model.loss_weights.{task}", m.loss_weights[task],
                 f"'{task}' is not an output domain {list(m.out_domains)}")

    t = cfg.trainer
    _require(t.epochs >= 1, "trainer.epochs", t.epochs, "must be >= 1")
    _require(t.batch_size >= 1, "trainer.batch_size", t.batch_size, "must be >= 1")
    _require(t.micro_batch_size is None or t.micro_batch_size >= 1, "trainer.micro_batch_size", t.micro_batch_size,
             "must be >= 1 or null")
    _require(t.eval_batch_size >= 1, "trainer.eval_batch_size", t.eval_batch_size, "must be >= 1")
    _require(t.log_every_steps >= 1, "trainer.log_every_steps", t.log_every_steps, "must be >= 1")
    _require(t.stop_after_steps is None or t.stop_after_steps >= 1, "trainer.stop_after_steps", t.stop_after_steps,
             "must be >= 1 or null")
    _require(t.val_every_epochs >= 0, "trainer.val_every_epochs", t.val_every_epochs, "must be >= 0 (0 = at the end only)")

    o = cfg.optim
    _require(o.blr > 0 or (o.lr is not None and o.lr > 0), "optim.blr", o.blr, "must be > 0")
    _require(o.lr is None or o.lr > 0, "optim.lr", o.lr, "must be > 0 or null")
    _require(o.min_lr >= 0, "optim.min_lr", o.min_lr, "must be >= 0")
    _require(o.warmup_epochs >= 0, "optim.warmup_epochs", o.warmup_epochs, "must be >= 0")
    _require(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), "optim.betas", list(o.betas),
             "must be two numbers in [0, 1)")
    _require(o.weight_decay >= 0, "optim.weight_decay", o.weight_decay, "must be >= 0")
    _require(o.clip_grad is None or o.clip_grad > 0, "optim.clip_grad", o.clip_grad, "must be > 0 or null")

    d = cfg.data
    _require(d.num_workers >= 0, "data.num_workers", d.num_workers, "must be >= 0")
    _require(d.name == "synthetic" or d.root, "data.root", d.root,
             "set data.root=/path/to/dataset (the folder holding <split>/<modality>/<class>/...)")
    _require(len(d.crop_scale) == 2 and 0 < d.crop_scale[0] <= d.crop_scale[1] <= 1, "data.crop_scale",
             list(d.crop_scale), "must be [min, max] with 0 < min <= max <= 1")
    _require(len(d.crop_ratio) == 2 and 0 < d.crop_ratio[0] <= d.crop_ratio[1], "data.crop_ratio",
             list(d.crop_ratio), "must be [min, max] with 0 < min <= max")
    _require(0 <= d.hflip_prob <= 1, "data.hflip_prob", d.hflip_prob, "must be in [0, 1]")
    s = d.synthetic
    _require(s.num_train >= 1 and s.num_val >= 1, "data.synthetic.num_train", s.num_train, "both splits need >= 1 sample")
    _require(s.image_size is None or s.image_size >= 8, "data.synthetic.image_size", s.image_size,
             "must be >= 8 or null (null = 5/4 of model.image_size)")
    _require(1 <= s.num_classes <= 10, "data.synthetic.num_classes", s.num_classes, "must be in [1, 10]")

    validate_teaching_config(cfg)

    known_tasks = ("imagenet_s50_cls", "nyuv2_seg", "nyuv2_depth")
    for task in cfg.downstream.tasks:
        _require(task in known_tasks, "downstream.tasks", list(cfg.downstream.tasks), f"choose from {list(known_tasks)}")

    c = cfg.checkpoint
    _require(c.every_epochs >= 0, "checkpoint.every_epochs", c.every_epochs, "must be >= 0 (0 = only at the end)")
    _require(c.every_steps is None or c.every_steps >= 1, "checkpoint.every_steps", c.every_steps, "must be >= 1 or null")
    _require(c.keep_last >= 1, "checkpoint.keep_last", c.keep_last, "must be >= 1")


def validate_teaching_config(cfg: DictConfig) -> None:
    """Checks of the ratio/, interval/, selection/ and teaching groups."""
    r, i, s, t = cfg.ratio, cfg.interval, cfg.selection, cfg.teaching
    _require(0 < r.initial_ratio <= 1, "ratio.initial_ratio", r.initial_ratio, "must be in (0, 1]")
    _require(0 < r.final_ratio <= 1, "ratio.final_ratio", r.final_ratio, "must be in (0, 1]")
    _require(r.initial_ratio <= r.final_ratio, "ratio.initial_ratio", r.initial_ratio,
             f"must not exceed ratio.final_ratio={r.final_ratio}")
    _require(i.initial_interval >= 1, "interval.initial_interval", i.initial_interval, "must be >= 1")
    _require(i.max_interval >= i.initial_interval, "interval.max_interval", i.max_interval,
             f"must be >= interval.initial_interval={i.initial_interval}")
    _require(s.temperature > 0, "selection.temperature", s.temperature, "must be > 0 (small = hard top-k, large = uniform)")
    _require(t.total_cycles >= 1, "teaching.total_cycles", t.total_cycles, "must be >= 1")
    _require(t.scoring_batch_size is None or t.scoring_batch_size >= 1, "teaching.scoring_batch_size",
             t.scoring_batch_size, "must be >= 1 or null")
    if s.strategy != "none":
        _require(cfg.trainer.epochs >= t.total_cycles + 1, "trainer.epochs", cfg.trainer.epochs,
                 f"AtteNT needs at least teaching.total_cycles + 1 = {t.total_cycles + 1} epochs (one full epoch, then "
                 "one or more per cycle); raise trainer.epochs or lower teaching.total_cycles")


def validate_config(cfg: DictConfig, kind: str) -> None:
    """Entry-point validation for ``kind`` in (pretrain, finetune)."""
    if kind == "pretrain":
        validate_train_config(cfg)
    else:
        from .finetune_config import validate_finetune_config

        validate_finetune_config(cfg)
