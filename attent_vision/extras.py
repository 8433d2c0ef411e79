"""Optional dependencies (the package's extras): a missing one is one line naming the feature and the install.

Each feature outside pretraining and fine-tuning brings its own dependencies, installed with an extra of
pyproject.toml: ``nyuv2`` (h5py, scipy: attent-prepare-nyuv2), ``report`` (matplotlib: attent-report's plots;
scipy: its 95% intervals),
``slurm`` (hydra-submitit-launcher: ``hydra/launcher=slurm_*`` and ``local_2cpu``). Their modules are imported only
when the feature runs, through :func:`require`, so the rest of the package works without them and a user who runs
the feature reads what to install instead of an ImportError traceback or Hydra's "Could not load
'hydra/launcher/submitit_slurm'".
"""

import importlib
import importlib.resources
from types import ModuleType

from omegaconf import OmegaConf

from .errors import UserError

# Modules that are not named like their distribution on PyPI.
DISTRIBUTIONS = {"hydra_plugins.hydra_submitit_launcher": "hydra-submitit-launcher"}

# The Hydra plugin behind the launcher configs in conf/shared/hydra/launcher/ whose defaults name submitit_*.
SUBMITIT_PLUGIN = "hydra_plugins.hydra_submitit_launcher"
_LAUNCHER_CONFIGS = "attent_vision.conf.shared"


class MissingExtra(UserError):
    """A feature needs a dependency of an extra that is not installed."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature`` (a command, or what the user asked for); a MissingExtra saying
    "<feature> needs <package>: pip install 'attent-vision[<extra>]'" when it is not installed."""
    package = DISTRIBUTIONS.get(module, module.split(".")[0])
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and not (module == e.name or module.startswith(e.name + ".")):
            raise  # the module is there but one of its own dependencies is not: the traceback says which
        raise MissingExtra(f"{feature} needs {package}, which is not installed: "
                           f"pip install 'attent-vision[{extra}]' (or pip install {package})") from None


def launcher_of(overrides: list[str]) -> str | None:
    """The ``hydra/launcher=<name>`` chosen on the command line, if any (the last one wins, as in Hydra)."""
    chosen = None
    for arg in overrides:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+~") == "hydra/launcher":
            chosen = value.strip()
    return chosen


def needs_submitit(launcher: str) -> bool:
    """Whether launcher config ``launcher`` is submitit's own or one of ours built on it: its defaults name a
    ``submitit_*`` config, or another of ours that does (slurm_6gpu extends slurm_1gpu)."""
    if launcher.startswith("submitit_"):
        return True
    config = importlib.resources.files(_LAUNCHER_CONFIGS).joinpath("hydra", "launcher", f"{launcher}.yaml")
    if not config.is_file():
        return False  # Hydra's own (basic) or a plugin's: Hydra says what is wrong with it
    defaults = OmegaConf.create(config.read_text()).get("defaults") or []
    return any(isinstance(d, str) and d != launcher and needs_submitit(d) for d in defaults)


def require_launcher_plugin(overrides: list[str], command: str) -> None:
    """Before Hydra composes the config: a launcher that needs the submitit plugin, when the plugin is missing, is
    a MissingExtra naming the ``slurm`` extra (Hydra would only say it cannot load ``hydra/launcher/submitit_*``)."""
    launcher = launcher_of(overrides)
    if launcher and needs_submitit(launcher):
        require(SUBMITIT_PLUGIN, "slurm", f"{command} hydra/launcher={launcher}")
