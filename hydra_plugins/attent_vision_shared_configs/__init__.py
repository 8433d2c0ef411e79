"""Adds attent-vision's shared config groups (logger/, hydra/launcher/, hydra/job_logging/) to the search path of
attent-vision's entry points, and of nothing else.

A Hydra SearchPathPlugin (found by Hydra in the ``hydra_plugins`` namespace package) rather than ``hydra.searchpath``
in the primary configs, because Hydra builds ``--help``'s group list before it reads the primary config: with the
plugin, each entry point's help lists the shared groups beside its own.

The configs are the package ``attent_vision.conf`` (conf/ at the repository root, mapped into the package by
pyproject.toml), so a primary config tree is ours when it is named as that package's train, finetune or pseudolabel
subpackage (``@hydra.main``, ``pkg://``) or is that subpackage's folder (tests and benchmarks compose from a folder
path: conf/ in a checkout, attent_vision/conf/ inside an installed wheel).
"""

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

OUR_PACKAGES = ("attent_vision.conf.train", "attent_vision.conf.finetune", "attent_vision.conf.pseudolabel")
SHARED = "pkg://attent_vision.conf.shared"


def our_folders() -> set[Path]:
    """Where this environment's ``attent_vision.conf`` keeps the two primary trees (none if it cannot import it)."""
    try:
        from attent_vision.conf import FINETUNE_CONF_DIR, PSEUDOLABEL_CONF_DIR, TRAIN_CONF_DIR
    except ImportError:
        return set()
    return {TRAIN_CONF_DIR, FINETUNE_CONF_DIR, PSEUDOLABEL_CONF_DIR}


def is_our_tree(path: str) -> bool:
    if path.startswith("pkg://"):  # pkg://attent_vision/conf/train (@hydra.main) or pkg://attent_vision.conf.train
        return path[len("pkg://"):].replace("/", ".").strip(".") in OUR_PACKAGES
    if "://" in path and not path.startswith("file://"):
        return False  # structured://, another provider's scheme
    folder = Path(path.removeprefix("file://"))
    return folder.name in ("train", "finetune", "pseudolabel") and folder.resolve() in our_folders()


class AttentVisionSharedConfigs(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        elements = search_path.get_path()
        if any(is_our_tree(element.path) for element in elements) and all(e.path != SHARED for e in elements):
            search_path.append(provider="attent-vision", path=SHARED)
