"""What every Hydra entry point does around its job: validate the config, find the run folder, run the stage,
and turn user errors (and storage errors: a full disk, a read-only folder) into one actionable line and exit status
2 instead of a traceback. An invocation refused before its run accepted it leaves the run's Hydra metadata as it
was (run_metadata.py). Before Hydra composes anything, ``check_command_line`` refuses a command line that needs
an optional extra which is not installed (a SLURM launcher without hydra-submitit-launcher)."""

import logging
import sys
import time
from pathlib import Path
from typing import Callable

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ..engine.storage import storage_error
from ..errors import UserError
from ..extras import require_launcher_plugin
from .run_metadata import RunMetadata

log = logging.getLogger("attent_vision")


def hydra_run_dir() -> str:
    return HydraConfig.get().runtime.output_dir


def check_command_line(argv: list[str], command: str, primary_config: Path) -> None:
    """What can be checked from the command line alone, before Hydra composes the config: a launcher whose plugin (the
    ``slurm`` extra) is not installed (Hydra would say only "Could not load 'hydra/launcher/submitit_slurm'"), and
    overrides naming a key, group or option that ``command``'s tree (``primary_config``'s folder) does not have
    (override_check.py; ``+key=value`` would otherwise pass silently). Each prints one line and exits with status
    2. Logging is not set up yet, hence stderr."""
    from .override_check import check_overrides

    try:
        require_launcher_plugin(argv, command)
        check_overrides(argv, command, primary_config)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)


def start_console_command(hydra_main: Callable[[], object], command: str, primary_config: Path) -> None:
    """What ``attent-train`` / ``attent-finetune`` do before handing ``sys.argv`` to their ``@hydra.main``
    function: ``--help`` (from ``primary_config``'s template, help_text.py), the command-line checks, and under
    torchrun the overrides that give every rank rank 0's run folder."""
    from ..conf import SHARED_CONF_DIR
    from ..engine.rank_env import rank_hydra_overrides
    from .help_text import print_help_if_asked

    if print_help_if_asked(sys.argv[1:], primary_config, SHARED_CONF_DIR):
        return
    check_command_line(sys.argv[1:], command, primary_config)  # a missing extra or a typo, before Hydra runs
    sys.argv += rank_hydra_overrides(sys.argv[1:])
    hydra_main()
    from .multirun_summary import take_exit_status

    # A multirun whose jobs did not all complete exits non-zero (its summary line was printed as it ended).
    status = take_exit_status()
    if status:
        sys.exit(status)


def _nothing() -> None:
    pass


def shutdown_distributed() -> None:
    """Leave the process group if a job joined one; a config error never imported torch, so it has none."""
    if "torch" in sys.modules:
        from ..engine.distributed import shutdown_distributed as shutdown

        shutdown()


def pretrain_job(cfg: DictConfig, run_dir: str | Path, accepted: Callable[[], None] = _nothing) -> dict:
    """Pretraining, then (with ``downstream.tasks``) fine-tuning of the finished model on those tasks
    (``<run>/downstream/<task>``), their best and final metrics added to results.json, so that a Table-3 sweep
    yields complete rows. The pretraining stage itself knows nothing of fine-tuning. ``accepted`` is called once
    the run folder took the run (its lock is held and its checkpoints fit this config)."""
    from ..engine.results import COMPLETED, write_json_atomic
    from ..pretraining.trainer import Pretrainer

    if cfg.downstream.tasks:  # a typo in the fine-tuning overrides fails now, not after pretraining
        from ..conf import FINETUNE_CONF_DIR
        from .override_check import check_overrides

        try:
            check_overrides(list(cfg.downstream.overrides), "attent-finetune", FINETUNE_CONF_DIR / "finetune.yaml")
        except UserError as e:
            raise type(e)(f"downstream.overrides: {e}") from None
    trainer = Pretrainer(cfg, run_dir)
    accepted()
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


def finetune_job(cfg: DictConfig, run_dir: str | Path, accepted: Callable[[], None] = _nothing) -> dict:
    from ..finetuning.trainer import Finetuner

    trainer = Finetuner(cfg, run_dir)
    accepted()
    return trainer.run()


JOBS: dict[str, Callable[..., dict]] = {"pretrain": pretrain_job, "finetune": finetune_job}


def run_entry(cfg: DictConfig, stage: str) -> dict | None:
    """Validate ``cfg`` for ``stage`` (pretrain / finetune), then run its job into the Hydra run folder. A multirun
    job also records how it ended, whatever ended it, for the sweep's summary line (multirun_summary.py)."""
    if HydraConfig.get().mode.name != "MULTIRUN":
        return run_job(cfg, stage)
    from .multirun_summary import record_job_outcome

    try:
        results = run_job(cfg, stage)
    except BaseException as e:  # a bug, or a second signal: Hydra stops the sweep; the record says why
        record_job_outcome(None, e)
        raise
    record_job_outcome(results)
    return results


def run_job(cfg: DictConfig, stage: str) -> dict | None:
    """``run_entry`` without the multirun record: a single run exits here with status 2 on a user error and with
    128 + n when signal n stopped it; a multirun job returns its results (``failed`` with the error line)."""
    from ..config import validate_config

    metadata = RunMetadata.of_hydra_job()
    try:
        validate_config(cfg, stage)
        results = JOBS[stage](cfg, hydra_run_dir(), accepted=metadata.accept)
    except (UserError, OSError) as e:
        # A full disk or read-only folder met by a write that does not name itself (a figure, config.yaml).
        error = e if isinstance(e, UserError) else storage_error(e, e.filename or hydra_run_dir())
        if error is None:
            raise
        shutdown_distributed()
        log.error("error: %s", error)
        # A multirun keeps going with its other jobs; a single run stops here with a non-zero status.
        if HydraConfig.get().mode.name == "MULTIRUN":
            return {"status": "failed", "error": str(error), "exit_code": error.exit_code}
        sys.exit(UserError.exit_code)
    finally:
        metadata.restore_unless_accepted()
    shutdown_distributed()  # a multirun's next job may start a new process group
    # A run stopped by a signal exits with 128 + signal number, so schedulers see that it did not finish.
    if results and results.get("exit_code") and HydraConfig.get().mode.name != "MULTIRUN":
        sys.exit(results["exit_code"])
    return results
