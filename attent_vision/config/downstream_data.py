"""The ``data`` schema of fine-tuning (attent_vision/conf/finetune/data/{synthetic_downstream,imagenet_s50_downstream,nyuv2}.yaml).

Which dataset serves which task is decided by data/downstream/datasets.py.
"""

from dataclasses import dataclass, field
from typing import Optional

from ..data.downstream.embedded import SyntheticDownstreamSettings

DOWNSTREAM_DATASETS = ("synthetic", "imagenet_s50", "nyuv2")


@dataclass
class DownstreamDataConfig:
    name: str = "synthetic"  # synthetic | imagenet_s50 | nyuv2
    root: Optional[str] = None  # dataset folder (imagenet_s50, nyuv2; the synthetic data has none)
    cache_dir: Optional[str] = None  # where the synthetic data is generated (null = $ATTENT_VISION_CACHE)
    train_split: Optional[str] = None  # null = the task's usual split
    eval_split: Optional[str] = None  # null = the task's usual evaluation split
    num_workers: int = 2  # loader worker processes
    pin_memory: bool = True  # page-locked host memory (CUDA)
    persistent_workers: bool = True  # keep workers alive between epochs
    prefetch_factor: int = 4  # batches each worker prepares ahead
    skip_bad_samples: bool = False  # leave out (and count) unreadable samples instead of stopping
    synthetic: SyntheticDownstreamSettings = field(default_factory=SyntheticDownstreamSettings)
