"""Fine-tune one checkpoint on several downstream tasks in this process (the end-of-pretraining evaluation that
turns a Table-3 pretraining run into a complete row).

    from attent_vision.finetuning.suite import run_finetune_suite
    results = run_finetune_suite("outputs/default/<run>", ["imagenet_s50_cls", "nyuv2_seg", "nyuv2_depth"],
                                 overrides=["trainer.epochs=5"], out_dir=Path("outputs/default/<run>/downstream"))

Each task is composed from attent_vision/conf/finetune/finetune.yaml exactly as ``python finetune.py task=<task> init_from=<ckpt>
<overrides>`` would be, validated, and run into ``out_dir/<task>/``. A task that fails with a user error (missing
dataset, bad override) is recorded as failed and the others still run; ``out_dir/downstream.json`` collects every
task's status, best and final metrics.
"""

import logging
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from ..conf import FINETUNE_CONF_DIR
from ..config import register_configs, validate_config
from ..config.downstream_tasks import DOWNSTREAM_TASKS
from ..engine.results import write_json_atomic
from ..errors import ConfigError, UserError

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


def run_finetune_suite(init_from: str | Path | None, tasks: list[str], overrides: list[str],
                       out_dir: Path) -> dict[str, dict]:
    """Fine-tune ``init_from`` on each of ``tasks`` with ``overrides`` (Hydra override strings, applied to every
    task), writing each run into ``out_dir/<task>``. Returns {task: results dict} (the task's results.json; for a
    task that failed with a user error: {"status": "failed", "error": message})."""
    from .trainer import finetune

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for task in tasks:
        try:
            cfg = compose_finetune(task, init_from, list(overrides))
            validate_config(cfg, "finetune")  # with the closed-schema check of keys added by +key
            log.info("downstream suite: %s from %s", task, init_from)
            results[task] = finetune(cfg, out_dir / task)
        except UserError as e:
            log.error("downstream suite: %s failed: %s", task, e)
            results[task] = {"status": "failed", "error": str(e)}
        summary = {t: {k: r.get(k) for k in ("status", "main_metric", "best", "final", "baseline", "error", "run_dir")
                       if k in r} for t, r in results.items()}
        write_json_atomic({"init_from": str(init_from) if init_from else None, "tasks": summary},
                          out_dir / "downstream.json")
    return results
