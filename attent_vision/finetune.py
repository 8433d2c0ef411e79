"""Fine-tune a pretrained encoder on a downstream task and report its metrics: ``attent-finetune``,
``python -m attent_vision.finetune`` or ``python finetune.py`` in a checkout (all three are this module).

    attent-finetune                                           # ImageNet-S50-like classification, embedded data, CPU
    attent-finetune debug=smoke                               # a whole fine-tuning run in well under a minute
    attent-finetune task=nyuv2_depth init_from=outputs/default/<run>   # our pretraining run (its pretrained.pth)
    attent-finetune -m finetune_sweep=all_tasks \
        init_from=/ckpt/multimae-b_98_rgb+-depth-semseg_1600e_multivit-afff3f8c.pth
    attent-finetune task=nyuv2_seg data=nyuv2 data.root=/data/nyuv2 init_from=...     # the reference recipe

The configs ship inside the package (conf/finetune/ plus conf/shared/). See docs/finetune.md.
"""

import hydra
from omegaconf import DictConfig

from attent_vision.cli.entry import run_entry, start_console_command
from attent_vision.cli.job_folder import register_job_folder_resolver
from attent_vision.conf import FINETUNE_CONF_DIR
from attent_vision.config import register_configs

register_configs("finetune")
register_job_folder_resolver()  # ${job_folder:...} names multirun job folders (hydra.sweep.subdir)


@hydra.main(version_base="1.3", config_path="pkg://attent_vision.conf.finetune", config_name="finetune")
def _hydra_main(cfg: DictConfig) -> float | None:
    results = run_entry(cfg, "finetune")
    if not results or "best" not in results:
        return None
    return results["best"].get(results["main_metric"])


def main() -> None:
    """Console-script entry (``attent-finetune``): Hydra parses ``sys.argv``."""
    start_console_command(_hydra_main, "attent-finetune", FINETUNE_CONF_DIR / "finetune.yaml")


if __name__ == "__main__":
    main()
