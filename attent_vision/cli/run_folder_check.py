"""Before Hydra writes anything: check that the run folder can be written.

Hydra creates the run folder, then opens the log file and writes ``.hydra/`` before our job starts, so a read-only
folder, a run folder path running through a file, or a full disk would fail inside Hydra with a traceback. This
callback (``hydra.callbacks.run_folder`` in conf/train/train.yaml and conf/finetune/finetune.yaml) runs before those
writes and says what is wrong in one line (storage.py), with exit status 2, like every other user error.
"""

import sys
import time

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from ..errors import StorageError, UserError
from ..storage import check_writable


class RunFolderCheck(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        check_or_exit(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        check_or_exit(config, "hydra.sweep.dir")  # the jobs' folders are made inside it


def check_or_exit(config: DictConfig, key: str) -> None:
    HydraConfig.instance().set_config(config)  # the folder's name may use ${hydra:...}, resolved as Hydra will
    try:
        check_writable(OmegaConf.select(config, key))
    except StorageError as e:
        message = str(e).replace("hydra.run.dir", key)  # a multirun's folder is set with hydra.sweep.dir
        # Job logging is not set up yet (its file is what may fail): write the line as the console log would.
        sys.stderr.write(f"[{time.strftime('%H:%M:%S')}][ERROR] error: {message}\n")
        sys.exit(UserError.exit_code)
