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

from ..errors import UserError
from ..extras import require_launcher_plugin
from ..storage import unattributed_error
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
    from ..engine.results import COMPLETED
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
    if results["status"] != COMPLETED or not cfg.downstream.tasks:
        return results
    return downstream_stage(cfg, trainer.run_dir, trainer.dist.is_main, results)


def downstream_stage(cfg: DictConfig, run_dir: Path, is_main: bool, results: dict) -> dict:
    """Fine-tune the completed pretraining run in ``run_dir`` (its ``results``) on ``downstream.tasks``, and
    return its results with theirs. The run's status covers both stages (``stages`` in results.json says which
    ended how): while the tasks run, results.json says ``running`` (a process killed there is not left saying
    ``completed``); a task stopped by a signal makes the run ``interrupted`` with 128 + n, so a scheduler requeues
    it and the rerun of the same command resumes that task (pretraining is complete, completed tasks are kept); a
    task that failed or diverged makes it ``failed``, its error naming the task, with that task's exit status
    (finetuning/suite.py ``suite_status``)."""
    from ..engine.results import COMPLETED, FAILED, RUNNING, write_json_atomic
    from ..finetuning.suite import run_finetune_suite, suite_status

    path = run_dir / "results.json"
    results["stages"] = {"pretraining": COMPLETED, "downstream": RUNNING}
    if is_main:
        write_json_atomic(results | {"status": RUNNING}, path)
    start = time.perf_counter()
    try:
        suite = run_finetune_suite(run_dir / "pretrained.pth", list(cfg.downstream.tasks),
                                   list(cfg.downstream.overrides), run_dir / "downstream")
    except UserError as e:  # the suite's own files (a full disk): not left saying "running" either
        results["stages"]["downstream"] = FAILED
        if is_main:
            try:
                write_json_atomic(results | {"status": FAILED, "error": str(e), "exit_code": e.exit_code}, path)
            except UserError as again:
                log.warning("results.json not updated: %s", again)
        raise
    keep = ("status", "main_metric", "best", "final", "baseline", "error", "exit_code", "diverged", "run_dir")
    results["downstream"] = {task: {k: r[k] for k in keep if k in r} for task, r in suite.items()}
    results["time_s"]["downstream"] = round(time.perf_counter() - start, 3)
    status, exit_code, error = suite_status(suite)
    results["stages"]["downstream"] = status
    results.update(status=status, exit_code=exit_code)
    if error:
        results["error"] = error
    if not is_main:
        return results
    write_json_atomic(results, path)
    for task, r in results["downstream"].items():
        value = (r.get("final") or {}).get(r.get("main_metric"))
        log.info("downstream %s: %s", task, f"final {r['main_metric']} {value:.4f}"
                 if value is not None and r["status"] == COMPLETED else r["status"])
    if error:
        log.error("error: %s", error)
    elif status != COMPLETED:
        unfinished = [f"{t} {r['status']}" for t, r in results["downstream"].items() if r["status"] != COMPLETED]
        log.warning("the downstream tasks did not all complete (%s); rerun the same command to resume them",
                    ", ".join(unfinished))
    return results


def finetune_job(cfg: DictConfig, run_dir: str | Path, accepted: Callable[[], None] = _nothing) -> dict:
    from ..finetuning.trainer import Finetuner

    trainer = Finetuner(cfg, run_dir)
    accepted()
    return trainer.run()


def pseudolabel_job(cfg: DictConfig, run_dir: str | Path, accepted: Callable[[], None] = _nothing) -> dict:
    from ..pseudolabelling.job import label_folder

    accepted()  # the run folder holds only this invocation's log: nothing to refuse
    return label_folder(cfg)


JOBS: dict[str, Callable[..., dict]] = {"pretrain": pretrain_job, "finetune": finetune_job,
                                        "pseudolabel": pseudolabel_job}


def run_entry(cfg: DictConfig, stage: str) -> dict | None:
    """Validate ``cfg`` for ``stage`` (pretrain / finetune / pseudolabel), then run its job into the Hydra run
    folder. A multirun job also records how it ended, whatever ended it, for the sweep's summary line
    (multirun_summary.py); a job stopped by a signal ends a sweep whose jobs run in this process, with that job's exit
    status."""
    if HydraConfig.get().mode.name != "MULTIRUN":
        return run_job(cfg, stage)
    from .multirun_summary import record_job_outcome, stop_sweep_after_a_signal

    try:
        results = run_job(cfg, stage)
    except BaseException as e:  # a bug, or a second signal: Hydra stops the sweep; the record says why
        record_job_outcome(None, e)
        raise
    record_job_outcome(results)
    stop_sweep_after_a_signal(results)  # a preempted sweep stops: the next job does not start
    return results


def run_job(cfg: DictConfig, stage: str) -> dict | None:
    """``run_entry`` without the multirun record: a single run exits here with status 2 on a user error and with
    128 + n when signal n stopped it; a multirun job returns its results (``failed`` with the error line)."""
    from ..config import validate_config
    from ..engine.tracking import check_wandb_mode

    metadata = RunMetadata.of_hydra_job()
    try:
        validate_config(cfg, stage)
        if "logger" in cfg:  # an environment variable wandb would refuse with a traceback, before any work
            check_wandb_mode(cfg.logger)
        results = JOBS[stage](cfg, hydra_run_dir(), accepted=metadata.accept)
    except (UserError, OSError) as e:
        # A full disk or read-only folder met by a write that does not name itself (a figure, config.yaml).
        error = e if isinstance(e, UserError) else unattributed_error(e, hydra_run_dir())
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
