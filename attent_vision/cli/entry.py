"""What every Hydra entry point does around its job: validate the config, find the run folder, run the stage,
and turn user errors into one actionable line and exit status 2 instead of a traceback."""

import logging
import sys
import time
from pathlib import Path
from typing import Callable

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ..engine.distributed import shutdown_distributed
from ..errors import UserError

log = logging.getLogger("attent_vision")


def hydra_run_dir() -> str:
    return HydraConfig.get().runtime.output_dir


def pretrain_job(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Pretraining, then (with ``downstream.tasks``) fine-tuning of the finished model on those tasks
    (``<run>/downstream/<task>``), their best and final metrics added to results.json, so that a Table-3 sweep
    yields complete rows. The pretraining stage itself knows nothing of fine-tuning."""
    from ..engine.results import COMPLETED, write_json_atomic
    from ..pretraining.trainer import Pretrainer

    trainer = Pretrainer(cfg, run_dir)
    results = trainer.run()
    tasks = list(cfg.downstream.tasks)
    if results["status"] != COMPLETED or not tasks:
        return results
    from ..finetuning.suite import run_finetune_suite

    start = time.perf_counter()
    suite = run_finetune_suite(trainer.run_dir / "pretrained.pth", tasks, list(cfg.downstream.overrides),
                               trainer.run_dir / "downstream")
    keep = ("status", "main_metric", "best", "final", "baseline", "error", "run_dir")
    results["downstream"] = {task: {k: r[k] for k in keep if k in r} for task, r in suite.items()}
    results["time_s"]["downstream"] = round(time.perf_counter() - start, 3)
    if trainer.dist.is_main:
        write_json_atomic(results, trainer.run_dir / "results.json")
        for task, r in results["downstream"].items():
            value = (r.get("final") or {}).get(r.get("main_metric"))
            log.info("downstream %s: %s", task, f"final {r['main_metric']} {value:.4f}" if value is not None
                     else r.get("status"))
    return results


def finetune_job(cfg: DictConfig, run_dir: str | Path) -> dict:
    from ..finetuning.trainer import finetune

    return finetune(cfg, run_dir)


JOBS: dict[str, Callable[[DictConfig, str], dict]] = {"pretrain": pretrain_job, "finetune": finetune_job}


def run_entry(cfg: DictConfig, stage: str) -> dict | None:
    """Validate ``cfg`` for ``stage`` (pretrain / finetune), then run its job into the Hydra run folder."""
    from ..config import validate_config

    try:
        validate_config(cfg, stage)
        results = JOBS[stage](cfg, hydra_run_dir())
    except UserError as e:
        shutdown_distributed()
        log.error("error: %s", e)
        # A multirun keeps going with its other jobs; a single run stops here with a non-zero status.
        if HydraConfig.get().mode.name == "MULTIRUN":
            return {"status": "failed", "error": str(e)}
        sys.exit(2)
    shutdown_distributed()  # a multirun's next job may start a new process group
    # A run stopped by a signal exits with 128 + signal number, so schedulers see that it did not finish.
    if results and results.get("exit_code") and HydraConfig.get().mode.name != "MULTIRUN":
        sys.exit(results["exit_code"])
    return results
