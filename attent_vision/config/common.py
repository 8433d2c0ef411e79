"""What both entry points' schemas share: the range-check helpers, and the trainer, optimiser, checkpoint and
logger settings that the shared loop core (engine/loop.py) reads.

Types are enforced by the schema (Hydra merges every YAML file and override onto these dataclasses); ranges and
cross-key rules are checked by ``validate_*`` functions that raise a ConfigError naming the key, the value and
the rule, before any work starts.
"""

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LOGGER_MODES = ("disabled", "offline", "online")


@dataclass
class TrainerConfig:
    """Loop settings of both stages (each stage's schema may add its own)."""

    epochs: int = 40  # epoch budget
    batch_size: int = 64  # global batch per optimizer step (all ranks together)
    eval_batch_size: int = 128  # batch of validation (and scoring) passes
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16
    compile: bool = False  # torch.compile the model
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0  # seeds weights, data order, augmentation, masks and selections
    log_every_steps: int = 20  # a log line every N optimizer steps
    val_every_epochs: int = 1  # validation every N epochs (0 = at the end only)
    progress_bar: bool = True  # tqdm bar on interactive terminals
    stop_after_steps: Optional[int] = None  # stop with a checkpoint after N steps of this invocation
    max_nonfinite_steps: int = 0  # non-finite loss/gradient steps skipped in a row before the run stops (diverged)


@dataclass
class OptimConfig:
    """AdamW and its per-step warm-up + cosine schedule (keys common to both stages)."""

    blr: Optional[float] = 1e-4  # base lr: lr = blr * batch_size / 256 (ignored when lr is set)
    lr: Optional[float] = None  # absolute learning rate
    min_lr: float = 1e-6  # cosine floor
    warmup_epochs: float = 40.0  # linear warm-up length in (full-data) epochs' worth of steps (fractions allowed)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    weight_decay: float = 0.05
    clip_grad: Optional[float] = None  # gradient-norm clipping (None = none)


@dataclass
class CheckpointConfig:
    resume: str = "auto"  # auto | never | archive | /path/to/step_X.pt
    every_epochs: int = 1  # checkpoint every N epochs (0 = only at the end)
    every_steps: Optional[int] = None  # also every N optimizer steps
    keep_last: int = 2  # checkpoints kept


@dataclass
class LoggerConfig:
    mode: str = "disabled"  # disabled | offline | online (wandb)
    project: str = "attent-vision"
    entity: Optional[str] = None
    name: Optional[str] = None  # None = experiment_name + the run's command-line overrides
    group: Optional[str] = None  # None = the sweep folder's name in a multirun, else no group
    tags: list[str] = field(default_factory=list)
    upload_artifacts: bool = False  # a completed run's results.json and final weights as a wandb Artifact


def get(cfg: Any, dotted: str) -> Any:
    """``cfg.a.b`` for a DictConfig or a dataclass."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.select(cfg, dotted)
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def require(condition: bool, key: str, value: Any, rule: str) -> None:
    """Raise a ConfigError naming ``key``, ``value`` and ``rule`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"config key {key}={value!r} is invalid: {rule}")


def check_choices(cfg: Any, choices: dict[str, tuple]) -> None:
    for key, allowed in choices.items():
        value = get(cfg, key)
        value = str(value).lower() if isinstance(value, bool) else value
        require(value in allowed, key, value, f"choose one of {list(allowed)}")


def is_pair(values, lower_ok) -> bool:
    """[lo, hi] with lo acceptable and lo <= hi."""
    return len(values) == 2 and lower_ok(values[0]) and values[0] <= values[1]


def check_device(device: str, key: str = "trainer.device") -> None:
    """``key`` (``trainer.device``): auto, cpu, cuda or cuda:N, and CUDA only where a GPU is visible."""
    require(device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit()),
            key, device, "must be auto, cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        import torch  # only to ask for a GPU: every other config check runs without torch

        require(torch.cuda.is_available(), key, device,
                f"no CUDA GPU is visible to this process; use {key}=cpu (or auto)")
        index = int(device[5:]) if ":" in device else 0
        require(index < torch.cuda.device_count(), key, device,
                f"this process sees {torch.cuda.device_count()} GPU(s) (cuda:0 ...)")


def validate_common(cfg: DictConfig) -> None:
    """Checks of the trainer, optim, checkpoint and logger keys shared by both stages."""
    check_choices(cfg, {"trainer.precision": PRECISIONS, "logger.mode": LOGGER_MODES})
    require(not (cfg.logger.upload_artifacts and cfg.logger.mode == "disabled"), "logger.upload_artifacts", True,
            "artifacts are uploaded through wandb, which logger.mode=disabled turns off; add logger=wandb or "
            "logger=wandb_offline")
    t = cfg.trainer
    require(t.batch_size >= 1, "trainer.batch_size", t.batch_size, "must be >= 1")
    require(t.eval_batch_size >= 1, "trainer.eval_batch_size", t.eval_batch_size, "must be >= 1")
    require(t.log_every_steps >= 1, "trainer.log_every_steps", t.log_every_steps, "must be >= 1")
    require(t.val_every_epochs >= 0, "trainer.val_every_epochs", t.val_every_epochs,
            "must be >= 0 (0 = at the end only)")
    require(t.stop_after_steps is None or t.stop_after_steps >= 1, "trainer.stop_after_steps", t.stop_after_steps,
            "must be >= 1 or null")
    require(t.max_nonfinite_steps >= 0, "trainer.max_nonfinite_steps", t.max_nonfinite_steps,
            "must be >= 0 (0 = stop at the first non-finite step)")
    require(t.seed >= 0, "trainer.seed", t.seed, "must be >= 0")
    check_device(t.device)

    o = cfg.optim
    require((o.blr is not None and o.blr > 0) or (o.lr is not None and o.lr > 0), "optim.lr", o.lr,
            "set optim.lr > 0 (absolute) or optim.blr > 0 (scaled by trainer.batch_size / 256)")
    require(o.lr is None or o.lr > 0, "optim.lr", o.lr, "must be > 0 or null")
    require(o.min_lr >= 0, "optim.min_lr", o.min_lr, "must be >= 0")
    require(o.warmup_epochs >= 0, "optim.warmup_epochs", o.warmup_epochs, "must be >= 0")
    require(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), "optim.betas", list(o.betas),
            "must be two numbers in [0, 1)")
    require(o.weight_decay >= 0, "optim.weight_decay", o.weight_decay, "must be >= 0")
    require(o.eps > 0, "optim.eps", o.eps, "must be > 0 (AdamW's denominator term)")
    require(o.clip_grad is None or o.clip_grad > 0, "optim.clip_grad", o.clip_grad, "must be > 0 or null")

    c = cfg.checkpoint
    require(c.every_epochs >= 0, "checkpoint.every_epochs", c.every_epochs, "must be >= 0 (0 = only at the end)")
    require(c.every_steps is None or c.every_steps >= 1, "checkpoint.every_steps", c.every_steps,
            "must be >= 1 or null")
    require(c.keep_last >= 1, "checkpoint.keep_last", c.keep_last, "must be >= 1")
    require(cfg.data.num_workers >= 0, "data.num_workers", cfg.data.num_workers, "must be >= 0")
    require(cfg.data.num_workers == 0 or cfg.data.prefetch_factor >= 1, "data.prefetch_factor",
            cfg.data.prefetch_factor, "must be >= 1 when data.num_workers > 0")
