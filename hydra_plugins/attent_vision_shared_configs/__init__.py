"""Adds attent-vision's shared config groups (logger/, hydra/launcher/, hydra/job_logging/) to the search path of
attent-vision's two entry points, and of nothing else.

A Hydra SearchPathPlugin (found by Hydra in the ``hydra_plugins`` namespace package) rather than ``hydra.searchpath``
in the primary configs, because Hydra builds ``--help``'s group list before it reads the primary config: with the
plugin, each entry point's help lists the shared groups beside its own.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

OUR_TREES = ("attent_vision.conf.train", "attent_vision.conf.finetune", "attent_vision/conf/train",
             "attent_vision/conf/finetune")
SHARED = "pkg://attent_vision.conf.shared"


class AttentVisionSharedConfigs(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        # Only for a search path whose primary config tree is ours (tests and benchmarks compose from a folder path).
        ours = any(element.path.replace("\\", "/").rstrip("/").endswith(OUR_TREES)
                   for element in search_path.get_path())
        if ours and all(element.path != SHARED for element in search_path.get_path()):
            search_path.append(provider="attent-vision", path=SHARED)
