"""The pretraining schema (train.py, conf/train/train.yaml) and its range checks.

``TrainConfig`` is registered in Hydra's ConfigStore as ``train_schema`` and sits first in conf/train/train.yaml's
defaults, so an unknown key or a wrongly typed value fails before any work starts. :func:`validate_train_config`
checks what types cannot express and raises a ConfigError naming the key, the value and the rule.
"""

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig

from ..data.pretrain.embedded import SyntheticSettings
from ..data.pretrain.kinds import PRETRAIN_DATASETS
from ..errors import ConfigError
from ..teaching.scores import SCORES
from ..teaching.settings import IntervalConfig, RatioConfig, SelectionConfig, TeachingConfig
from ..teaching.strategies import STRATEGIES
from .common import CheckpointConfig, LoggerConfig, OptimConfig, TrainerConfig, check_choices, require, validate_common
from .downstream_tasks import DOWNSTREAM_TASKS
from .probe import ProbeConfig, validate_probe_config


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
class DataConfig:
    name: str = "synthetic"
    root: Optional[str] = None  # the dataset folder (folder datasets; the synthetic data has none)
    cache_dir: Optional[str] = None  # where the synthetic data is generated (None = $ATTENT_VISION_CACHE)
    train_split: str = "train"
    val_split: Optional[str] = "val"
    max_val_samples: Optional[int] = None
    num_workers: int = 2
    pin_memory: bool = True
    persistent_workers: bool = True
    prefetch_factor: int = 4
    skip_bad_samples: bool = False
    cache: str = "none"  # none | memory (decoded samples kept in RAM after their first read)
    crop_scale: list[float] = field(default_factory=lambda: [0.2, 1.0])
    crop_ratio: list[float] = field(default_factory=lambda: [0.75, 1.3333333])
    hflip_prob: float = 0.5
    synthetic: SyntheticSettings = field(default_factory=SyntheticSettings)


@dataclass
class PretrainOptimConfig(OptimConfig):
    name: str = "adamw"  # timm optimizer name
    decay_norm_and_bias: bool = True  # weight decay on 1-D parameters too (the MultiMAE release does)
    fused: str = "auto"  # fused AdamW: auto (on CUDA) | true | false


@dataclass
class PretrainTrainerConfig(TrainerConfig):
    micro_batch_size: Optional[int] = None  # per-rank forward batch (gradient accumulation); None = batch / ranks
    vis_every_epochs: int = 0  # reconstruction PNGs every N epochs (0 = at the end only)
    num_vis_samples: int = 4  # validation samples in reconstruction PNGs


@dataclass
class DownstreamConfig:
    tasks: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: PretrainOptimConfig = field(default_factory=PretrainOptimConfig)
    ratio: RatioConfig = field(default_factory=RatioConfig)
    interval: IntervalConfig = field(default_factory=IntervalConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    teaching: TeachingConfig = field(default_factory=TeachingConfig)
    trainer: PretrainTrainerConfig = field(default_factory=PretrainTrainerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    downstream: DownstreamConfig = field(default_factory=DownstreamConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    experiment_name: str = "default"
    extra: dict[str, Any] = field(default_factory=dict)  # the user's own keys (+extra.note=...): kept, never read
    extensions: list[str] = field(default_factory=list)  # modules imported first: they register scores, datasets...


CHOICES = {
    "data.cache": ("none", "memory"),
    "optim.name": ("adamw",),
    "optim.fused": ("auto", "true", "false"),
    "ratio.schedule": ("constant", "cosine", "incremental"),
    "interval.schedule": ("fixed", "incremental"),
    "selection.normalization": ("softmax", "sigmoid", "zscore", "rank"),
    "teaching.scoring_view": ("deterministic", "paper"),
    "teaching.score_source": ("pass", "training"),
    "selection.reweight": ("none", "unbiased"),
}


def validate_train_config(cfg: DictConfig) -> None:
    """Raise ConfigError (naming the key, the value and the rule) for values the schema's types let through."""
    from ..models.domains import check_domains
    from ..models.factory import parse_model_name

    validate_common(cfg)
    # Registries are read when the config is checked, after the user's extensions registered their entries
    check_choices(cfg, CHOICES | {"selection.strategy": tuple(STRATEGIES), "teaching.score": tuple(SCORES)})
    try:
        parse_model_name(cfg.model.name)
        check_domains(list(cfg.model.in_domains), list(cfg.model.out_domains))
    except ValueError as e:
        raise ConfigError(f"config group model: {e}") from None
    require(cfg.model.name.startswith("multimae_"), "model.name", cfg.model.name, "pretraining needs a multimae_<size>")
    require(cfg.data.max_val_samples is None or cfg.data.max_val_samples >= 1, "data.max_val_samples",
            cfg.data.max_val_samples, "must be >= 1 or null (to skip validation, set data.val_split=null)")
    m = cfg.model
    require(m.image_size > 0 and m.patch_size > 0 and m.image_size % m.patch_size == 0, "model.image_size",
            m.image_size, f"must be a positive multiple of model.patch_size={m.patch_size}")
    require(m.patch_size % 4 == 0 or "semseg" not in m.in_domains, "model.patch_size", m.patch_size,
            "must be divisible by 4 when semseg is an input (its labels are stored at 1/4 resolution)")
    require(m.alpha > 0, "model.alpha", m.alpha, "the Dirichlet concentration must be > 0")
    require(m.num_encoded_tokens is None or m.num_encoded_tokens >= 1, "model.num_encoded_tokens",
            m.num_encoded_tokens, "must be >= 1 or null (one sixth of the input tokens)")
    require(m.semseg_num_classes >= 1, "model.semseg_num_classes", m.semseg_num_classes, "must be >= 1")
    require(0 <= m.drop_path_rate < 1, "model.drop_path_rate", m.drop_path_rate, "must be in [0, 1)")
    for task in m.loss_weights:
        require(task in m.out_domains, f"model.loss_weights.{task}", m.loss_weights[task],
                 f"'{task}' is not an output domain {list(m.out_domains)}")
        require(m.loss_weights[task] >= 0, f"model.loss_weights.{task}", m.loss_weights[task],
                "must be >= 0 (a negative weight would maximise that task's loss)")

    t = cfg.trainer
    require(t.epochs >= 1, "trainer.epochs", t.epochs, "must be >= 1")
    require(t.micro_batch_size is None or t.micro_batch_size >= 1, "trainer.micro_batch_size", t.micro_batch_size,
            "must be >= 1 or null")

    d = cfg.data
    kind = PRETRAIN_DATASETS.get(d.name)  # the registered kinds (data/pretrain/kinds/), the user's extensions too
    require(not kind.takes_root or d.root, "data.root", d.root, kind.missing_root)
    require(kind.takes_root or d.root is None, "data.root", d.root, kind.unexpected_root)
    require(len(d.crop_scale) == 2 and 0 < d.crop_scale[0] <= d.crop_scale[1] <= 1, "data.crop_scale",
            list(d.crop_scale), "must be [min, max] with 0 < min <= max <= 1")
    require(len(d.crop_ratio) == 2 and 0 < d.crop_ratio[0] <= d.crop_ratio[1], "data.crop_ratio",
            list(d.crop_ratio), "must be [min, max] with 0 < min <= max")
    require(0 <= d.hflip_prob <= 1, "data.hflip_prob", d.hflip_prob, "must be in [0, 1]")
    s = d.synthetic
    require(s.num_train >= 1 and s.num_val >= 1, "data.synthetic.num_train", s.num_train,
            "both splits need >= 1 sample")
    require(s.image_size is None or s.image_size >= 8, "data.synthetic.image_size", s.image_size,
            "must be >= 8 or null (null = 5/4 of model.image_size)")
    require(1 <= s.num_classes <= 10, "data.synthetic.num_classes", s.num_classes, "must be in [1, 10]")

    validate_teaching_config(cfg)
    validate_probe_config(cfg)

    for task in cfg.downstream.tasks:
        require(task in DOWNSTREAM_TASKS, "downstream.tasks", list(cfg.downstream.tasks),
                f"choose from {list(DOWNSTREAM_TASKS)}")



def validate_teaching_config(cfg: DictConfig) -> None:
    """Checks of the ratio/, interval/, selection/ and teaching groups."""
    r, i, s, t = cfg.ratio, cfg.interval, cfg.selection, cfg.teaching
    require(0 < r.initial_ratio <= 1, "ratio.initial_ratio", r.initial_ratio, "must be in (0, 1]")
    require(0 < r.final_ratio <= 1, "ratio.final_ratio", r.final_ratio, "must be in (0, 1]")
    require(r.initial_ratio <= r.final_ratio, "ratio.initial_ratio", r.initial_ratio,
            f"must not exceed ratio.final_ratio={r.final_ratio}")
    require(i.initial_interval >= 1, "interval.initial_interval", i.initial_interval, "must be >= 1")
    require(i.max_interval >= i.initial_interval, "interval.max_interval", i.max_interval,
            f"must be >= interval.initial_interval={i.initial_interval}")
    require(s.temperature > 0, "selection.temperature", s.temperature,
            "must be > 0 (small = hard top-k, large = uniform)")
    require(t.total_cycles >= 1, "teaching.total_cycles", t.total_cycles, "must be >= 1")
    require(t.scoring_batch_size is None or t.scoring_batch_size >= 1, "teaching.scoring_batch_size",
            t.scoring_batch_size, "must be >= 1 or null")
    require(0 < t.refresh_fraction <= 1, "teaching.refresh_fraction", t.refresh_fraction,
            "must be in (0, 1] (the share of samples re-scored before each selection with score_source=training)")
    require(t.max_scoring_fraction is None or 0 < t.max_scoring_fraction <= 1, "teaching.max_scoring_fraction",
            t.max_scoring_fraction, "must be in (0, 1] or null (no cap)")
    require(0 <= s.prune_ratio < 1, "selection.prune_ratio", s.prune_ratio,
            "must be in [0, 1) (the share of N/2 samples dropped from the below-mean ones each pruned epoch)")
    require(0 < s.prune_delta <= 1, "selection.prune_delta", s.prune_delta,
            "must be in (0, 1] (epochs below delta x E are pruned, the rest run on full data)")
    require(0 < t.reference_holdout < 1, "teaching.reference_holdout", t.reference_holdout,
            "must be in (0, 1) (the share of the training split held out for learnability's reference model)")
    require(t.reference_max_steps >= 1, "teaching.reference_max_steps", t.reference_max_steps,
            "must be >= 1 (the reference model's optimizer steps at most)")
    require(t.reference_check_every >= 1, "teaching.reference_check_every", t.reference_check_every,
            "must be >= 1 (optimizer steps per window of the reference model's plateau check)")
    require(t.reference_patience >= 1, "teaching.reference_patience", t.reference_patience,
            "must be >= 1 (windows in a row without improvement before the reference model stops)")
    require(t.reference_draws >= 1, "teaching.reference_draws", t.reference_draws,
            "must be >= 1 (the draws each sample's reference loss averages; 1 = a single draw)")
    strategy = STRATEGIES[s.strategy]
    require(s.reweight != "unbiased" or strategy.has_unbiased_weights, "selection.reweight", s.reweight,
            "has no unbiased form for selection=hard (top-k never picks the samples outside it, so no weighting of "
            "the others can stand in for them); use selection=soft or random, or selection.reweight=none")
    if SCORES[t.score].needs_history and strategy.needs_scores and not strategy.free_scores_only:
        require(t.score_source == "training", "teaching.score", t.score,
                "needs a score history before the first selection, which a scoring pass cannot give; add "
                "teaching.score_source=training (training-step scores keep each sample's previous loss)")
    if t.score_modalities is not None:
        require(isinstance(t.score_modalities, DictConfig) and len(t.score_modalities) > 0,
                "teaching.score_modalities", t.score_modalities,
                "must be a mapping modality -> weight, e.g. {rgb:1,depth:1,semseg:1}, or null (the training objective)")
        for task, weight in t.score_modalities.items():
            require(task in cfg.model.out_domains, f"teaching.score_modalities.{task}", weight,
                    f"names a modality the model does not reconstruct; choose from {list(cfg.model.out_domains)}")
            number = isinstance(weight, (int, float)) and not isinstance(weight, bool)
            require(number and weight >= 0, f"teaching.score_modalities.{task}", weight, "must be >= 0")
        require(any(w > 0 for w in t.score_modalities.values()), "teaching.score_modalities",
                dict(t.score_modalities), "needs at least one weight > 0 (or null: the training objective)")
    require(t.score_draws >= 1, "teaching.score_draws", t.score_draws,
            "must be >= 1 (the number of mask draws each sample's score averages; 1 = a single draw)")
    require(t.score_top_q is None or 0 < t.score_top_q <= 1, "teaching.score_top_q", t.score_top_q,
            "must be in (0, 1] (the share of a sample's highest-loss patches its score averages) or null (all)")
    require(t.repeatability_samples >= 0, "teaching.repeatability_samples", t.repeatability_samples,
            "must be >= 0 (samples scored twice at each selection to measure repeatability; 0 = off)")
    if t.normalize_free_scores and strategy.needs_scores:
        require(t.score_source == "training" or strategy.free_scores_only, "teaching.normalize_free_scores",
                t.normalize_free_scores, "normalises free scores; add teaching.score_source=training")
        require(SCORES[t.score].relative_to_loss_level, "teaching.normalize_free_scores", t.normalize_free_scores,
                f"normalises loss scores (ratios to the loss level), not teaching.score={t.score}; use one of the two")
    free = t.score_source == "training" or strategy.free_scores_only
    require(not (t.shared_mask and strategy.needs_scores and free), "teaching.shared_mask", t.shared_mask,
            "shares one mask pattern among the samples of a scoring pass; free scores come from training steps, "
            "whose masks are the sample's own, and would be ranked beside them: use it with teaching.score_source=pass")
    if strategy.trains_on_subsets and strategy.cyclic:
        require(cfg.trainer.epochs >= t.total_cycles + 1, "trainer.epochs", cfg.trainer.epochs,
                 f"AtteNT needs at least teaching.total_cycles + 1 = {t.total_cycles + 1} epochs (one full epoch, then "
                 "one or more per cycle); raise trainer.epochs or lower teaching.total_cycles")
