"""The ``probe`` group of the pretraining schema: representation probes of the encoder while it pretrains.

Probes measure what the paper's claim is about, downstream quality, on frozen encoder features: a k-nearest-
neighbour classifier and a linear classifier on the global token of labelled images, and a per-patch linear
depth regression on NYUv2-style frames (attent_vision/probes/). They run at the end of pretraining and, with
``every_epochs``, every N epochs; their time is kept apart from training (``time_s.probe``).
"""

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import DictConfig

from .common import require

PROBE_KINDS = ("knn", "linear", "depth")


@dataclass
class EmbeddedProbeData:
    """Sizes of the embedded probe set (the renderer of the embedded data, written once into the cache). 250
    validation images per class over 10 classes: the standard error of an accuracy is at most 1 point (p = 0.5)."""

    train_per_class: int = 100  # kNN memory bank and linear-probe training images per class
    val_per_class: int = 250  # images per class the accuracies are measured on
    nyu_train: int = 200  # NYUv2-like frames the depth probe is fitted on
    nyu_test: int = 100  # frames its delta1 is measured on


@dataclass
class ProbeConfig:
    kinds: list[str] = field(default_factory=lambda: list(PROBE_KINDS))  # any of knn, linear, depth; [] = none
    every_epochs: Optional[int] = None  # also probe every N epochs (null = at the end only)
    at_start: bool = False  # also probe the untrained encoder (results.json "initial")
    root: Optional[str] = None  # ImageNet-S50-style folder for knn/linear (null = the embedded probe set)
    depth_root: Optional[str] = None  # prepared NYUv2-style folder for depth (null = the embedded frames)
    train_split: str = "train"  # classification: the split the kNN bank and the linear probe are fitted on
    val_split: str = "validation"  # classification: the split the accuracies are measured on
    k: int = 20  # kNN neighbours (cosine similarity)
    knn_temperature: float = 0.07  # kNN vote weights exp(similarity / T)
    linear_steps: int = 100  # full-batch L-BFGS steps of the linear classifier
    linear_weight_decay: float = 1e-4  # L2 penalty of the linear classifier
    depth_ridge: float = 1e-2  # ridge penalty of the per-patch depth regression
    batch_size: int = 128  # images per forward pass of the frozen encoder
    embedded: EmbeddedProbeData = field(default_factory=EmbeddedProbeData)


def validate_probe_config(cfg: DictConfig) -> None:
    """Range checks of ``probe.*`` (the data itself is checked when the probes first load it)."""
    p = cfg.probe
    for kind in p.kinds:
        require(kind in PROBE_KINDS, "probe.kinds", list(p.kinds), f"choose from {list(PROBE_KINDS)}")
    require(len(set(p.kinds)) == len(p.kinds), "probe.kinds", list(p.kinds), "lists a probe twice")
    require(p.every_epochs is None or p.every_epochs >= 1, "probe.every_epochs", p.every_epochs,
            "must be >= 1, or null to probe at the end of pretraining only")
    require(p.k >= 1, "probe.k", p.k, "must be >= 1")
    require(p.knn_temperature > 0, "probe.knn_temperature", p.knn_temperature, "must be > 0")
    require(p.linear_steps >= 1, "probe.linear_steps", p.linear_steps, "must be >= 1")
    require(p.linear_weight_decay >= 0, "probe.linear_weight_decay", p.linear_weight_decay, "must be >= 0")
    require(p.depth_ridge > 0, "probe.depth_ridge", p.depth_ridge, "must be > 0")
    require(p.batch_size >= 1, "probe.batch_size", p.batch_size, "must be >= 1")
    e = p.embedded
    require(min(e.train_per_class, e.val_per_class, e.nyu_train, e.nyu_test) >= 1, "probe.embedded",
            dict(e), "every split of the embedded probe set needs >= 1 image")
    require("rgb" in cfg.model.in_domains or not p.kinds, "probe.kinds", list(p.kinds),
            "probes read rgb images, but rgb is not among model.in_domains; set probe=none")
