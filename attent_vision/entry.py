"""What every Hydra entry point does around its job: validate the config, find the run folder, and turn user
errors into one actionable line and exit status 2 instead of a traceback."""

import logging
import sys
from typing import Callable

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from .errors import UserError

log = logging.getLogger("attent_vision")


def hydra_run_dir() -> str:
    return HydraConfig.get().runtime.output_dir


def run_entry(cfg: DictConfig, kind: str, job: Callable[[DictConfig, str], dict]) -> dict | None:
    """Validate ``cfg`` for ``kind`` (pretrain / finetune), then run ``job(cfg, run_dir)``."""
    from .config import validate_config

    try:
        validate_config(cfg, kind)
        results = job(cfg, hydra_run_dir())
    except UserError as e:
        log.error("error: %s", e)
        # A multirun keeps going with its other jobs; a single run stops here with a non-zero status.
        if HydraConfig.get().mode.name == "MULTIRUN":
            return {"status": "failed", "error": str(e)}
        sys.exit(2)
    # A run stopped by a signal exits with 128 + signal number, so schedulers see that it did not finish.
    if results and results.get("exit_code") and HydraConfig.get().mode.name != "MULTIRUN":
        sys.exit(results["exit_code"])
    return results
