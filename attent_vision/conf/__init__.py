"""The Hydra configs, shipped inside the package so an installed wheel runs from any directory.

    train/      attent-train's primary config (train.yaml) and its groups (model/ data/ ratio/ selection/ ...)
    finetune/   attent-finetune's primary config (finetune.yaml) and its groups (task/ data/ benchmark/ ...)
    shared/     groups both use (logger/, hydra/launcher/, hydra/job_logging/), on both search paths

Two trees, so each entry point's ``--help`` lists only its own groups.
"""

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent
TRAIN_CONF_DIR = CONF_DIR / "train"
FINETUNE_CONF_DIR = CONF_DIR / "finetune"
SHARED_CONF_DIR = CONF_DIR / "shared"
