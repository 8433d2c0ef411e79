"""The Hydra configs: conf/ at the repository root, where users of Hydra projects look for them, and the package
``attent_vision.conf`` wherever attent-vision is installed (pyproject.toml maps this folder into the package: an
editable install imports it from here, a wheel carries it as attent_vision/conf/), so an installed wheel runs from
any directory. The package finds the configs through the constants below (or ``pkg://attent_vision.conf...``).

    train/      attent-train's primary config (train.yaml) and its groups (model/ data/ ratio/ selection/ ...)
    finetune/   attent-finetune's primary config (finetune.yaml) and its groups (task/ data/ benchmark/ ...)
    pseudolabel/ attent-pseudolabel's primary config (pseudolabel.yaml) and its groups (depth/ semseg/)
    shared/     groups both use (logger/, hydra/launcher/, hydra/job_logging/), on both search paths

One tree per entry point, so each entry point's ``--help`` lists only its own groups.
"""

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent
TRAIN_CONF_DIR = CONF_DIR / "train"
FINETUNE_CONF_DIR = CONF_DIR / "finetune"
PSEUDOLABEL_CONF_DIR = CONF_DIR / "pseudolabel"
SHARED_CONF_DIR = CONF_DIR / "shared"
