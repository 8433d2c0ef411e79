"""Label a folder of images with depth and semantic segmentation for MultiMAE pretraining: ``attent-pseudolabel``,
``python -m attent_vision.pseudolabel`` (torchrun: ``torchrun --nproc_per_node N -m attent_vision.pseudolabel``).

    attent-pseudolabel input=~/photos output=/data/mine                     label (rerun the same command to resume)
    attent-pseudolabel input=~/photos output=/data/mine val_fraction=0.02   2% of the images to the val split
    attent-pseudolabel ... depth=depth_anything_v2_small semseg.model=<id or folder>   other models

The configs ship inside the package (conf/pseudolabel/ plus conf/shared/). See docs/pseudolabel.md.
"""

import hydra
from omegaconf import DictConfig

from attent_vision.cli.entry import run_entry, start_console_command
from attent_vision.conf import PSEUDOLABEL_CONF_DIR
from attent_vision.config import register_configs

register_configs("pseudolabel")


@hydra.main(version_base="1.3", config_path="pkg://attent_vision.conf.pseudolabel", config_name="pseudolabel")
def _hydra_main(cfg: DictConfig) -> None:
    run_entry(cfg, "pseudolabel")


def main() -> None:
    """Console-script entry (``attent-pseudolabel``): Hydra parses ``sys.argv``."""
    start_console_command(_hydra_main, "attent-pseudolabel", PSEUDOLABEL_CONF_DIR / "pseudolabel.yaml")


if __name__ == "__main__":
    main()
