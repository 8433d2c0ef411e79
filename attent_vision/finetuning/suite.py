"""Fine-tune one checkpoint on several downstream tasks in this process (the end-of-pretraining evaluation that
turns a Table-3 pretraining run into a complete row).

    from attent_vision.finetuning.suite import run_finetune_suite
    results = run_finetune_suite("outputs/default/<run>", ["imagenet_s50_cls", "nyuv2_seg", "nyuv2_depth"],
                                 overrides=["trainer.epochs=5"], out_dir=Path("outputs/default/<run>/downstream"))

Each task is composed from conf/finetune/finetune.yaml exactly as ``python finetune.py task=<task> init_from=<ckpt>
<overrides>`` would be, validated, and run into ``out_dir/<task>/``. A task that fails with a user error (missing
dataset, bad override) is recorded as failed and the others still run; ``out_dir/downstream.json`` collects every
task's status, best and final metrics.

Rerunning the suite into the same ``out_dir`` continues it: a task that completed there with the same settings is
kept as it is (its results.json is read, nothing is trained again); any other task's fine-tune resumes from its own
checkpoints in ``out_dir/<task>/checkpoints`` (or starts, or is refused when they were written with other settings,
as a single fine-tuning run would be). A task stopped by a signal (SIGTERM on preemption) ends the suite: the tasks
after it are not started, so the process can stop as the scheduler asked. ``suite_status`` sums the tasks up into
the status, exit status and error of the run the suite belongs to.
"""

import logging
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf, open_dict

from ..conf import FINETUNE_CONF_DIR
from ..config import register_configs, validate_config
from ..config.downstream_tasks import DOWNSTREAM_TASKS
from ..engine.results import (
    COMPLETED,
    DIVERGED,
    FAILED,
    INTERRUPTED,
    read_results,
    stopped_by_signal,
    write_json_atomic,
)
from ..errors import CheckpointError, ConfigError, UserError
from ..storage import unattributed_error, writing

log = logging.getLogger(__name__)


def compose_finetune(task: str, init_from: str | Path | None, overrides: list[str]):
    """The config ``python finetune.py task=<task> init_from=<init_from> <overrides>`` would run (no run folder).

    Works inside a running Hydra app (e.g. at the end of train.py): the caller's Hydra state is restored after."""
    if task not in DOWNSTREAM_TASKS and not (FINETUNE_CONF_DIR / "task" / f"{task}.yaml").is_file():
        raise ConfigError(f"unknown fine-tuning task '{task}'; choose from {list(DOWNSTREAM_TASKS)}")
    register_configs()
    args = [f"task={task}", *overrides]
    # GlobalHydra.instance() is looked up afresh each time: Hydra's initialize context swaps the singleton's state.
    saved = GlobalHydra.instance().hydra if GlobalHydra.instance().is_initialized() else None
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(FINETUNE_CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="finetune", overrides=args)
    except Exception as e:  # Hydra's own errors for unknown keys, groups or options: one line for the user
        raise ConfigError(f"fine-tuning config for task {task} with overrides {overrides}: {e}") from None
    finally:
        GlobalHydra.instance().clear()
        if saved is not None:
            GlobalHydra.instance().initialize(saved)
    with open_dict(cfg):
        cfg.init_from = str(init_from) if init_from is not None else None
    return cfg


def completed_before(run_dir: Path, cfg) -> dict | None:
    """The results of the task fine-tuned into ``run_dir`` when it completed there with the settings of ``cfg``
    (up to the keys a resume may change), else None: the trainer then resumes, starts, or refuses the folder."""
    from ..engine.checkpoint import config_differences
    from .trainer import Finetuner

    try:
        result = read_results(run_dir / "results.json")
    except (OSError, ValueError):  # none yet, or unreadable: the trainer's own checks decide
        return None
    if result.get("status") != COMPLETED or not isinstance(result.get("config"), dict):
        return None
    current = OmegaConf.to_container(cfg, resolve=True)
    return None if config_differences(result["config"], current, Finetuner.resume_may_differ) else result


def run_finetune_suite(init_from: str | Path | None, tasks: list[str], overrides: list[str],
                       out_dir: Path) -> dict[str, dict]:
    """Fine-tune ``init_from`` on each of ``tasks`` with ``overrides`` (Hydra override strings, applied to every
    task), writing each run into ``out_dir/<task>``. Returns {task: results dict} (the task's results.json; for a
    task that failed with a user error: {"status": "failed", "error": message, "exit_code": 2}). A task stopped by a
    signal is the last one run: the tasks after it are left out of the returned dict."""
    from .trainer import finetune

    out_dir = Path(out_dir)
    with writing(out_dir):  # a full disk or read-only folder: one line naming it
        out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for task in tasks:
        try:
            cfg = compose_finetune(task, init_from, list(overrides))
            validate_config(cfg, "finetune")  # with the closed-schema check of keys added by +key
            kept = completed_before(out_dir / task, cfg)
            if kept is not None:
                log.info("downstream suite: %s completed earlier in %s; kept", task, out_dir / task)
                results[task] = kept
            else:
                log.info("downstream suite: %s from %s", task, init_from)
                results[task] = finetune(cfg, out_dir / task)
        except (UserError, OSError) as e:  # an OSError no writer named (e.g. generating the embedded data)
            error = e if isinstance(e, UserError) else unattributed_error(e, out_dir / task)
            if error is None:
                raise
            if isinstance(error, CheckpointError) and "checkpoint.resume=archive" in str(error):
                # At the top level that option would archive the whole pretraining run, not this task.
                error = CheckpointError(f"{error}; for this downstream task: add checkpoint.resume=archive to "
                                        f"downstream.overrides, or remove {out_dir / task}")
            log.error("downstream suite: %s failed: %s", task, error)
            results[task] = {"status": FAILED, "error": str(error), "exit_code": error.exit_code}
        summary = {t: {k: r.get(k) for k in ("status", "main_metric", "best", "final", "baseline", "error", "run_dir")
                       if k in r} for t, r in results.items()}
        write_json_atomic({"init_from": str(init_from) if init_from else None, "tasks": summary},
                          out_dir / "downstream.json")
        if stopped_by_signal(results[task]):
            left = tasks[tasks.index(task) + 1:]
            log.warning("downstream suite: %s stopped by signal %d%s", task, results[task]["exit_code"] - 128,
                        f"; not started: {', '.join(left)}" if left else "")
            break
    return results


def suite_status(results: dict[str, dict]) -> tuple[str, int, str | None]:
    """(status, exit status, error line) of a run whose downstream tasks ended as ``results`` ({task: results}),
    as a single run of the worst of them would report it:
    - a task stopped by a signal: ``interrupted`` with 128 + n (a scheduler requeues it; the rerun resumes the task);
    - a task that failed or diverged: ``failed``, with the error naming each such task, and the exit status of that
      task's own run (2 for a user error, 3 for divergence; 1 when they differ);
    - a task stopped at ``trainer.stop_after_steps``: ``interrupted`` with 0 (rerunning continues it);
    - else ``completed``."""
    signalled = [r for r in results.values() if stopped_by_signal(r)]
    if signalled:
        return INTERRUPTED, signalled[0]["exit_code"], None
    broken = {task: r for task, r in results.items() if r.get("status") in (FAILED, DIVERGED)}
    if broken:
        codes = {r.get("exit_code") or (3 if r["status"] == DIVERGED else 2) for r in broken.values()}
        return FAILED, codes.pop() if len(codes) == 1 else 1, "; ".join(task_error(t, r) for t, r in broken.items())
    if any(r.get("status") != COMPLETED for r in results.values()):
        return INTERRUPTED, 0, None
    return COMPLETED, 0, None


def task_error(task: str, result: dict) -> str:
    """One line on why downstream ``task`` did not complete."""
    if result.get("status") == DIVERGED:
        where = result.get("diverged") or {}
        return (f"downstream {task} diverged (non-finite {where.get('what', 'values')} at step {where.get('step')}); "
                "lower optim.lr or set optim.clip_grad in downstream.overrides, then rerun")
    return f"downstream {task}: {result.get('error', 'failed')}"
