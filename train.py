"""Pretrain a MultiMAE with AtteNT scored-subset selection.

    python train.py                                   # embedded synthetic data, CPU-sized defaults
    python train.py debug=smoke                       # well under a minute
    python train.py selection=hard ratio=cosine       # any Table-3 row; experiment=table3/<row> names them
    python train.py sweep=table3                      # the whole Table 3 as one multirun
    python train.py data=imagenet_s50 data.root=/data/pretrain-50 experiment=paper_imagenet_s50
    torchrun --nproc_per_node 2 train.py ...           # DDP; same global batch, same results as one process
"""

import sys

import hydra
from omegaconf import DictConfig

from attent_vision.cli.entry import run_entry
from attent_vision.config import register_configs
from attent_vision.engine.distributed import rank_hydra_overrides

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    results = run_entry(cfg, "pretrain")
    return results.get("final", {}).get("val_loss") if results else None


if __name__ == "__main__":
    sys.argv += rank_hydra_overrides(sys.argv[1:])  # torchrun: one run folder (rank 0's) for all ranks
    main()
