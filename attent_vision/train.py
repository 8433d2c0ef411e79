"""Pretrain a MultiMAE with AtteNT scored-subset selection: ``attent-train``, ``python -m attent_vision.train`` or
``python train.py`` in a checkout (all three are this module).

    attent-train                                      # embedded synthetic data, CPU-sized defaults
    attent-train debug=smoke                          # well under a minute, under outputs/smoke/
    attent-train selection=hard ratio=cosine          # any Table-3 row; experiment=table3/<row> names them
    attent-train sweep=table3                         # the whole Table 3 as one multirun (the sweep sets -m itself)
    attent-train data=imagenet_s50 data.root=/data/pretrain-50 experiment=paper_imagenet_s50
    torchrun --nproc_per_node 2 -m attent_vision.train ...   # DDP; same global batch, same results as one process

The configs ship inside the package (conf/train/, plus the groups shared with fine-tuning in conf/shared/), so an
installed wheel runs from any directory.
"""

import hydra
from omegaconf import DictConfig

from attent_vision.cli.entry import run_entry, start_console_command
from attent_vision.cli.job_folder import register_job_folder_resolver
from attent_vision.conf import TRAIN_CONF_DIR
from attent_vision.config import register_configs

register_configs("pretrain")
register_job_folder_resolver()  # ${job_folder:...} names multirun job folders (hydra.sweep.subdir)


@hydra.main(version_base="1.3", config_path="pkg://attent_vision.conf.train", config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    results = run_entry(cfg, "pretrain")
    return results.get("final", {}).get("val_loss") if results else None


def main() -> None:
    """Console-script entry (``attent-train``): Hydra parses ``sys.argv``."""
    start_console_command(_hydra_main, "attent-train", TRAIN_CONF_DIR / "train.yaml")


if __name__ == "__main__":
    main()
