"""Fine-tune a pretrained encoder on a downstream task and report its metrics.

    python finetune.py                                        # ImageNet-S50-like classification, embedded data, CPU
    python finetune.py task=nyuv2_depth init_from=outputs/default/<run>   # our pretraining run (its pretrained.pth)
    python finetune.py -m finetune_sweep=all_tasks init_from=/ckpt/multimae-b_98_rgb+-depth-semseg_1600e_multivit-afff3f8c.pth
    python finetune.py task=nyuv2_seg data=nyuv2 data.root=/data/nyuv2 init_from=...     # the reference recipe
See docs/finetune.md.
"""

import sys

import hydra
from omegaconf import DictConfig

from attent_vision.cli.entry import run_entry
from attent_vision.config import register_configs
from attent_vision.engine.distributed import rank_hydra_overrides

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="finetune")
def main(cfg: DictConfig) -> float | None:
    results = run_entry(cfg, "finetune")
    if not results or "best" not in results:
        return None
    return results["best"].get(results["main_metric"])


if __name__ == "__main__":
    sys.argv += rank_hydra_overrides(sys.argv[1:])  # torchrun: one run folder (rank 0's) for all ranks
    main()
