"""The pseudo-labelling schema (attent-pseudolabel, conf/pseudolabel/pseudolabel.yaml) and its range checks.

Registered in Hydra's ConfigStore as ``pseudolabel_schema``: a typo or a wrongly typed value fails before any model
is loaded. :func:`validate_pseudolabel_config` checks what types cannot express (ranges, choices, the input and
output folders) and raises a ConfigError naming the key, the value and the rule.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig

from ..errors import ConfigError
from .common import check_choices, check_device, require

LABEL_TASKS = ("depth", "semseg")  # what the command can label, in the order it writes them


@dataclass
class DepthLabellerConfig:
    model: str = "Intel/dpt-large"  # Hugging Face model id or local folder (AutoModelForDepthEstimation)
    revision: Optional[str] = None  # hub branch, tag or commit (None = main)
    resolution: int = 384  # images are resized to resolution x resolution before the model's own preprocessing
    prediction: str = "disparity"  # what the model outputs: disparity (relative inverse depth) | depth
    far_limit: float = 100.0  # disparity -> depth: the farthest depth kept, as a multiple of the nearest


@dataclass
class SemsegLabellerConfig:
    model: str = "facebook/mask2former-swin-small-coco-panoptic"  # AutoModelForUniversalSegmentation
    revision: Optional[str] = None
    resolution: int = 512
    mode: str = "semantic"  # semantic (every pixel its most likely class) | panoptic (uncovered pixels = 255)
    threshold: float = 0.8  # panoptic: score a segment needs to be kept


@dataclass
class PseudolabelConfig:
    input: Optional[str] = None  # folder of images: <input>/<class>/<name> or <input>/<name>
    output: Optional[str] = None  # dataset root written: <output>/<split>/{rgb,depth,semseg}/<class>/...
    split: str = "train"
    val_fraction: float = 0.0  # share of images put into val_split (a stable hash of <class>/<stem>)
    val_split: str = "val"
    tasks: list[str] = field(default_factory=lambda: list(LABEL_TASKS))
    rgb: str = "link"  # link (hard link, else copy) | symlink | copy
    batch_size: int = 8
    num_workers: int = 2
    device: str = "auto"
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16
    on_bad_image: str = "skip"  # skip (reported and counted) | error
    max_images: Optional[int] = None
    stop_after_batches: Optional[int] = None
    progress_bar: bool = True
    depth: DepthLabellerConfig = field(default_factory=DepthLabellerConfig)
    semseg: SemsegLabellerConfig = field(default_factory=SemsegLabellerConfig)
    extra: dict[str, Any] = field(default_factory=dict)  # the user's own keys, never read


CHOICES = {
    "rgb": ("link", "symlink", "copy"),
    "precision": ("auto", "fp32", "bf16"),
    "on_bad_image": ("skip", "error"),
    "depth.prediction": ("disparity", "depth"),
    "semseg.mode": ("semantic", "panoptic"),
}


def validate_pseudolabel_config(cfg: DictConfig) -> None:
    """Raise ConfigError (key, value, rule) for values the schema's types let through, and for input/output folders
    that cannot work (missing input, output inside the input: its own labels would be read as photos next time)."""
    check_choices(cfg, CHOICES)
    check_device(cfg.device, "device")
    tasks = list(cfg.tasks)
    require(len(tasks) >= 1 and len(set(tasks)) == len(tasks) and all(t in LABEL_TASKS for t in tasks), "tasks",
            tasks, f"a non-empty list of {list(LABEL_TASKS)} without repeats")
    require(cfg.batch_size >= 1, "batch_size", cfg.batch_size, "must be >= 1")
    require(cfg.num_workers >= 0, "num_workers", cfg.num_workers, "must be >= 0 (0 = decode in this process)")
    require(0 <= cfg.val_fraction < 1, "val_fraction", cfg.val_fraction, "must be in [0, 1)")
    require(cfg.split != cfg.val_split or cfg.val_fraction == 0, "val_split", cfg.val_split,
            f"must differ from split={cfg.split!r} when val_fraction > 0")
    for key in ("split", "val_split"):
        name = cfg[key]
        require(bool(name) and "/" not in name and name not in (".", ".."), key, name, "a plain folder name")
    require(cfg.max_images is None or cfg.max_images >= 1, "max_images", cfg.max_images, "must be >= 1 or null")
    require(cfg.stop_after_batches is None or cfg.stop_after_batches >= 1, "stop_after_batches",
            cfg.stop_after_batches, "must be >= 1 or null")
    for task in ("depth", "semseg"):
        require(cfg[task].resolution >= 16, f"{task}.resolution", cfg[task].resolution, "must be >= 16 pixels")
    require(cfg.depth.far_limit > 1, "depth.far_limit", cfg.depth.far_limit, "must be > 1")
    require(0 <= cfg.semseg.threshold <= 1, "semseg.threshold", cfg.semseg.threshold, "must be in [0, 1]")
    check_folders(cfg.input, cfg.output)


def check_folders(input: Optional[str], output: Optional[str]) -> None:
    """The input must be a folder; the output must be set and lie outside it."""
    if input is None:
        raise ConfigError("config key input is not set: give the folder of images to label, e.g. input=~/photos")
    if output is None:
        raise ConfigError("config key output is not set: give the dataset folder to write, e.g. "
                          "output=/data/my-images (then train with data=folder data.root=<that folder>)")
    source = Path(input).expanduser().resolve()
    if not source.is_dir():
        what = "does not exist" if not source.exists() else "is not a folder"
        raise ConfigError(f"config key input={input!r}: {source} {what}; give the folder that holds your images")
    target = Path(output).expanduser().resolve()
    if target == source or source in target.parents:
        raise ConfigError(f"config key output={output!r} is inside input={input!r}: the labels would be read as "
                          "images by the next run over the input; choose an output folder outside it")
