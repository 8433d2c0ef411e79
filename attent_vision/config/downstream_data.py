"""The ``data`` schema of fine-tuning (conf/finetune/data/*.yaml).

``name`` picks a registered downstream dataset (data/downstream/datasets/, one module each: which task kinds it
serves, its default splits, how it is read); config/finetune.py looks it up.
"""

from dataclasses import dataclass, field
from typing import Optional

from ..data.downstream.embedded import SyntheticDownstreamSettings


@dataclass
class DownstreamDataConfig:
    name: str = "synthetic"  # a registered downstream dataset (data/downstream/datasets/)
    root: Optional[str] = None  # the dataset's folder (a generated one, like the synthetic data, has none)
    cache_dir: Optional[str] = None  # where generated data is written (null = $ATTENT_VISION_CACHE)
    train_split: Optional[str] = None  # null = the task's usual split
    eval_split: Optional[str] = None  # null = the task's usual evaluation split
    num_workers: int = 2  # loader worker processes
    pin_memory: bool = True  # page-locked host memory (CUDA)
    persistent_workers: bool = True  # keep workers alive between epochs
    prefetch_factor: int = 4  # batches each worker prepares ahead
    skip_bad_samples: bool = False  # leave out (and count) unreadable samples instead of stopping
    synthetic: SyntheticDownstreamSettings = field(default_factory=SyntheticDownstreamSettings)
