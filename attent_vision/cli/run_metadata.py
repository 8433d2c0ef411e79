"""The run folder's Hydra metadata belongs to the invocation that the run accepted, not to a refused one.

Hydra writes ``<run>/.hydra/`` (config.yaml, overrides.yaml, hydra.yaml) for every invocation before our job
starts. An invocation that is then refused (a bad value, a folder in use, a resume with other settings,
``checkpoint.resume=never`` over checkpoints) must not leave its command in place of the run's own. So when a run
is accepted (its trainer is built: the folder's lock is held and its checkpoints fit the config) those files are
copied to ``<run>/.hydra/accepted/``, and an invocation that ends before it was accepted copies them back. A folder
that never held an accepted run keeps the refused invocation's files: there is no run whose record they replace.
"""

import logging
import shutil
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

from ..atomic_files import atomic_write
from ..storage import writing

log = logging.getLogger("attent_vision")

ACCEPTED = "accepted"


def _copy(source: Path, target: Path) -> None:
    """Copy through a temporary name: a reader never sees half a file."""
    with open(source, "rb") as src, atomic_write(target) as dst:
        shutil.copyfileobj(src, dst)


class RunMetadata:
    """This invocation's Hydra metadata folder (None when Hydra writes none: ``hydra.output_subdir=null``)."""

    def __init__(self, folder: str | Path | None):
        self.folder = Path(folder) if folder is not None else None
        self.accepted = False

    @classmethod
    def of_hydra_job(cls) -> "RunMetadata":
        hydra = HydraConfig.get()
        subdir = hydra.output_subdir
        return cls(Path(hydra.runtime.output_dir) / subdir if subdir is not None else None)

    def accept(self) -> None:
        """The run accepted this invocation: its files become the run's own."""
        self.accepted = True
        if self.folder is None or not self.folder.is_dir():
            return
        keep = self.folder / ACCEPTED
        with writing(keep):
            keep.mkdir(exist_ok=True)
            for path in self.folder.glob("*.yaml"):
                _copy(path, keep / path.name)

    def restore_unless_accepted(self) -> None:
        """An invocation that ends unaccepted puts back the files of the run's accepted one (if there is one)."""
        keep = self.folder / ACCEPTED if self.folder is not None else None
        if self.accepted or keep is None or not keep.is_dir():
            return
        try:
            for path in keep.glob("*.yaml"):
                _copy(path, self.folder / path.name)
        except OSError as e:  # the error that ended the invocation is the one the user needs to see
            log.warning("could not restore the run's Hydra metadata from %s: %s", keep, e)
