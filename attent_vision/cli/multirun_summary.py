"""A multirun says how its jobs ended, in one line, and exits non-zero when one of them did not complete.

A job's user error (a bad value, a data error) ends that job, not the sweep: ``run_entry`` logs it and returns, so
Hydra's sweeper goes on with the other jobs, and the shell would see status 0 with the failure somewhere up in the
log. So each job records its outcome (number, folder, status, error line, exit status) in
``<sweep dir>/.job_outcomes/<num>.json``: a file in the sweep folder rather than a value in memory, because a
launcher may run jobs in other processes or on other machines (submitit/SLURM) that share only the file system.
Only rank 0 of a job writes it.

The :class:`MultirunSummary` callback (``hydra.callbacks.multirun_summary`` in conf/train/train.yaml and
conf/finetune/finetune.yaml) clears those files when a multirun starts (a rerun into the same sweep folder must not
report the previous run's jobs), and when it ends reads them and prints one line to stderr:
``all 3 jobs completed`` or ``2 of 3 jobs failed: multirun/<date>/0_trainer.seed=-5 (failed: <error>), ...``.
How many jobs were launched is computed from the sweep's overrides and ``hydra.sweeper.params`` the way Hydra's
basic sweeper expands them, so a job that never recorded an outcome (killed, out of memory) counts as failed.

Exit status (``start_console_command`` exits with it after Hydra returns): 0 when every job completed (or stopped
at ``trainer.stop_after_steps``, as its single run would exit 0); otherwise the status the failed jobs' single runs
would have exited with when they all agree (2: user errors, 3: diverged, 128 + n: stopped by signal n), else 1.

A job stopped by a signal (SIGTERM on preemption, Ctrl-C) stops the sweep when its jobs run one after another in
this process (Hydra's basic launcher): going on would start the next job after the scheduler asked the process to
end. ``stop_sweep_after_a_signal`` prints the summary line (the jobs after it "not started") and exits with that
job's status (128 + n); rerunning the same command with the same ``hydra.sweep.dir`` resumes the stopped job and
runs the rest. Launchers that run jobs in processes of their own (submitit) deliver signals to those jobs, not here.
"""

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from ..engine.rank_env import env_rank
from ..engine.results import COMPLETED, DIVERGED, FAILED, INTERRUPTED, stopped_by_signal, write_json_atomic
from ..errors import UserError

OUTCOMES_FOLDER = ".job_outcomes"  # inside the sweep folder; not a job folder (no .hydra/, no results.json)
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
MAX_ERROR_CHARS = 300  # per job in the summary line; the job's log has the whole message

log = logging.getLogger("attent_vision")
_exit_status: int | None = None  # set when a multirun ends, taken by start_console_command
_sweep_config: DictConfig | None = None  # the multirun running in this process (None in a launcher's job process)


def is_rank_zero() -> bool:
    """Rank 0 of a torchrun or multi-task SLURM job, or a single process."""
    return env_rank() == 0


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def job_outcome(results: dict | None, error: BaseException | None = None) -> dict:
    """{status, error, exit_code} of a job from what ``run_entry`` returned, or from the exception that ended it."""
    if error is not None:
        stopped = isinstance(error, KeyboardInterrupt)  # a second signal: stopped without a checkpoint
        return {"status": INTERRUPTED if stopped else FAILED, "exit_code": 128 + signal.SIGINT if stopped else 1,
                "error": one_line(f"{type(error).__name__}: {error}")}
    results = results or {"status": FAILED, "error": "the job returned no results"}
    status, code = results.get("status", FAILED), results.get("exit_code") or 0
    if status == FAILED:
        return {"status": status, "exit_code": code or 1, "error": one_line(results.get("error", "unknown error"))}
    if status == DIVERGED:
        where = results.get("diverged") or {}
        return {"status": status, "exit_code": code or 1,
                "error": f"non-finite {where.get('what', 'values')} at step {where.get('step')}"}
    if status == INTERRUPTED:
        why = f"stopped by signal {code - 128}" if code > 128 else "stopped at trainer.stop_after_steps"
        return {"status": status, "exit_code": code, "error": f"{why}; rerun with the same hydra.sweep.dir to resume"}
    return {"status": status, "exit_code": code, "error": None}


def record_job_outcome(results: dict | None, error: BaseException | None = None) -> None:
    """Called by ``run_entry`` at the end of every multirun job (rank 0 writes)."""
    if not is_rank_zero():
        return
    hydra = HydraConfig.get()
    folder = Path(hydra.runtime.cwd) / hydra.sweep.dir / OUTCOMES_FOLDER  # the job may have changed directory
    record = {"job": int(hydra.job.num), "folder": hydra.runtime.output_dir, **job_outcome(results, error),
              "overrides": list(hydra.overrides.task)}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(record, folder / f"{record['job']}.json")
    except (UserError, OSError) as e:  # the job's own outcome (already logged) matters more than its record
        log.warning("the outcome of job %d was not recorded: %s", record["job"], e)


def launched_jobs(config: DictConfig) -> int | None:
    """How many jobs the sweep launched, expanded as Hydra's basic sweeper does (``hydra.sweeper.params`` first,
    then the command line's overrides); None for another sweeper, whose jobs only its own records count."""
    if OmegaConf.select(config, "hydra.sweeper._target_") != BASIC_SWEEPER:
        return None
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        params = OmegaConf.select(config, "hydra.sweeper.params") or {}  # None without a sweep file
        lines = [f"{key}={value}" for key, value in params.items()]
        lines += OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
        overrides = OverridesParser.create().parse_overrides(lines)
        return sum(len(batch) for batch in BasicSweeper.split_arguments(overrides, None))
    except Exception:  # e.g. a glob() sweep needs Hydra's config loader: count the jobs' records instead
        return None


def read_outcomes(folder: Path) -> dict[int, dict]:
    outcomes = {}
    for path in folder.glob("*.json"):
        try:
            record = json.loads(path.read_text())
            outcomes[int(record["job"])] = record
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: that job counts as one without an outcome
    return outcomes


def shown(folder: str | Path) -> str:
    """A folder as the user typed its sweep folder: relative to the working directory when inside it."""
    relative = os.path.relpath(folder)
    return str(folder) if relative.startswith("..") else relative


def no_outcome(sweep_dir: Path, num: int) -> dict:
    """The record of job ``num``, launched but never recorded: it was killed or crashed (out of memory, a node lost)."""
    found = [p for p in sweep_dir.glob(f"{num}_*") if p.is_dir()]
    return {"job": num, "folder": found[0] if len(found) == 1 else sweep_dir / f"{num}_*", "status": FAILED,
            "exit_code": 1, "error": "no outcome recorded (killed, or crashed before it ended: see its log)"}


def stopped_at_step_limit(outcome: dict) -> bool:
    """Stopped at trainer.stop_after_steps, as asked (a single run exits 0; rerunning continues it)."""
    return outcome["status"] == INTERRUPTED and not outcome.get("exit_code")


def summarize(sweep_dir: Path, launched: int | None, stopped_at: int | None = None) -> tuple[str, int] | None:
    """(summary line, exit status) of the multirun in ``sweep_dir``; None when no job ran. ``stopped_at``: the job
    after which a signal stopped the sweep (the later jobs without an outcome were never started)."""
    outcomes = read_outcomes(sweep_dir / OUTCOMES_FOLDER)
    total = max([launched or 0, len(outcomes)] + [num + 1 for num in outcomes])
    if total == 0:
        return None
    not_started = [num for num in range(total)
                   if stopped_at is not None and num > stopped_at and num not in outcomes]
    ended = [outcomes.get(num) or no_outcome(sweep_dir, num) for num in range(total) if num not in not_started]
    stopped = [o for o in ended if stopped_at_step_limit(o)]
    bad = [o for o in ended if o["status"] != COMPLETED and not stopped_at_step_limit(o)]
    unstarted = (f"; {'job' if len(not_started) == 1 else 'jobs'} {', '.join(map(str, not_started))} not started "
                 "(the sweep stopped at the signal; rerun the same command with the same hydra.sweep.dir to resume it "
                 "and run the rest)") if not_started else ""
    if not bad:
        if not stopped:
            return (f"all {total} jobs completed" if total > 1 else "the job completed"), 0
        return (f"{total - len(stopped)} of {total} jobs completed, {len(stopped)} stopped at "
                f"trainer.stop_after_steps ({', '.join(shown(o['folder']) for o in stopped)}); rerun with the same "
                "hydra.sweep.dir to continue"), 0
    verb = "failed" if all(o["status"] == FAILED for o in bad) else "did not complete"
    listed = ", ".join(f"{shown(o['folder'])} ({o['status']}: {clip(o.get('error'))})" for o in bad)
    codes = {o.get("exit_code") or 1 for o in bad}
    return f"{len(bad)} of {total} jobs {verb}: {listed}{unstarted}", codes.pop() if len(codes) == 1 else 1


def clip(text: str | None) -> str:
    text = one_line(text or "no error recorded")
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def outcomes_folder(config: DictConfig) -> Path:
    HydraConfig.instance().set_config(config)  # the folder's name may use ${hydra:...}, resolved as Hydra does
    return Path(os.path.abspath(OmegaConf.select(config, "hydra.sweep.dir"))) / OUTCOMES_FOLDER


def print_summary(config: DictConfig, stopped_at: int | None = None) -> int | None:
    """Print the sweep's summary line to stderr; returns its exit status (None when no job ran)."""
    summary = summarize(outcomes_folder(config).parent, launched_jobs(config), stopped_at)
    if summary is None:
        return None
    line, status = summary
    # As the console log would print it: logging is still set up for the last job (and its log file).
    level = "ERROR" if status else "INFO"
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}][{level}] {line}\n")
    sys.stderr.flush()
    return status


def stop_sweep_after_a_signal(results: dict | None) -> None:
    """Called by ``run_entry`` after a multirun job recorded its outcome: when a signal stopped that job and the
    sweep runs its jobs in this process, print the summary and exit with the job's status (the jobs after it do
    not start). SystemExit passes through Hydra's job runner, which catches only Exception."""
    global _sweep_config
    if not stopped_by_signal(results or {}) or _sweep_config is None:
        return
    code = results["exit_code"]
    if OmegaConf.select(_sweep_config, "hydra.launcher._target_") != BASIC_LAUNCHER:
        return
    config, _sweep_config = _sweep_config, None  # on_multirun_end will not run: the sweep ends here
    num = int(HydraConfig.get().job.num)
    log.warning("job %d was stopped by signal %d: the sweep stops here", num, code - 128)
    if is_rank_zero():
        print_summary(config, stopped_at=num)
    sys.exit(code)


class MultirunSummary(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        global _exit_status, _sweep_config
        _exit_status, _sweep_config = None, config
        if not is_rank_zero():
            return
        for stale in outcomes_folder(config).glob("*.json"):  # a previous multirun into the same sweep folder
            stale.unlink(missing_ok=True)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        global _exit_status, _sweep_config
        _sweep_config = None
        if not is_rank_zero():
            return  # rank 0 reports (and exits non-zero) for the whole job
        _exit_status = print_summary(config)


def take_exit_status() -> int:
    """The exit status of the multirun that just ended in this process (0 when none did), once."""
    global _exit_status
    status, _exit_status = _exit_status, None
    return status or 0
