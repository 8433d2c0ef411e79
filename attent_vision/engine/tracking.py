"""Experiment tracking: Weights & Biases when enabled (offline and online modes), nothing otherwise.

wandb stays disabled by default so that no run ever needs network access. The run id is stored in the run
folder, so a resumed run continues the same wandb run instead of starting a new one.

Runs are easy to find in the wandb UI: each is named after its experiment and its command-line overrides, and
the jobs of a Hydra multirun share one group, the sweep folder's name (``logger.name`` / ``logger.group`` set
either explicitly). With ``logger.upload_artifacts`` a completed run's results.json and final weights become a
wandb Artifact. Only APIs present since wandb 0.17 are used (init, log, Histogram, Image, Artifact with
``add_file(policy=...)``, log_artifact, finish); tests/test_tracking.py reads offline runs back. A $WANDB_MODE that
wandb would refuse (it validates the variable at every start, with a traceback) is one line naming it, before wandb
starts (``check_wandb_mode``).
"""

import json
import logging
import os
import secrets
from pathlib import Path

from ..errors import ConfigError

log = logging.getLogger(__name__)

# $WANDB_MODE values every supported wandb release (0.17.2 to 0.31) accepts; wandb validates the variable whenever a
# run starts, whatever mode wandb.init is given, and refuses any other value (an empty one too) with a traceback.
WANDB_MODES = ("online", "offline", "disabled", "dryrun", "run")

MAX_NAME_CHARS = 128  # the wandb UI cuts longer run names anyway
# Overrides a run's name leaves out: the experiment file sets experiment_name (already in the name), the sweep is
# the run's group, and the logger settings say where the run is logged, not what it is.
NAME_SKIPS_GROUPS = ("experiment", "sweep", "logger")


def run_name(experiment_name: str, overrides: list[str]) -> str:
    """``experiment_name`` followed by the run's overrides, shortened for a wandb run list:
    ``t3_full debug=smoke,trainer.seed=1``. Overrides are sorted (as in Hydra's ``override_dirname``), ``+``
    prefixes dropped, path values cut to their last two parts (``data.root=/data/sets/nyuv2`` -> ``sets/nyuv2``)."""
    items = []
    for override in overrides:
        key, sep, value = override.lstrip("+").partition("=")
        if key.split(".")[0] in NAME_SKIPS_GROUPS:
            continue
        if "/" in value:
            value = "/".join(value.rstrip("/").split("/")[-2:])
        items.append(f"{key}{sep}{value}")
    name = f"{experiment_name} {','.join(sorted(items))}" if items else experiment_name
    return name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 3] + "..."


def hydra_job(run_dir: Path) -> tuple[str | None, list[str]]:
    """(group, overrides) from the Hydra job this process runs: the sweep folder's name when it is a multirun
    (``hydra.sweep.dir``, e.g. the date folder), and the job's overrides (``hydra.overrides.task`` less
    ``hydra.job.config.override_dirname.exclude_keys``: what ``override_dirname`` holds, read as a list so that
    list values keep their commas) when ``run_dir`` is the job's own folder, not e.g. a downstream fine-tune
    inside it. (None, []) outside a Hydra app (the Python API, tests)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None, []
    hydra = HydraConfig.get()
    group = Path(hydra.sweep.dir).name if hydra.mode == RunMode.MULTIRUN else None
    output_dir = hydra.runtime.output_dir
    if not output_dir or Path(output_dir).resolve() != Path(run_dir).resolve():
        return group, []
    excluded = set(hydra.job.config.override_dirname.exclude_keys)
    return group, [o for o in hydra.overrides.task if o.lstrip("+~").partition("=")[0] not in excluded]


def installed_wandb_modes() -> tuple[str, ...]:
    """The modes the installed wandb accepts (its settings' ``mode`` field: 0.31 adds ``shared``); WANDB_MODES when
    they cannot be read (releases whose settings are not a pydantic model). Imports wandb."""
    import typing

    try:
        from wandb.sdk.wandb_settings import Settings

        modes = typing.get_args(Settings.model_fields["mode"].annotation)
    except (ImportError, AttributeError, KeyError, TypeError):  # another layout of wandb's settings
        return WANDB_MODES
    return tuple(m for m in modes if isinstance(m, str)) or WANDB_MODES


def check_wandb_mode(logger_cfg) -> None:
    """A ConfigError naming $WANDB_MODE when it holds a value wandb refuses and this run starts wandb (a logger whose
    ``logger.mode`` is not ``disabled``). Cheap and torch-free, so it can run before any work: wandb is imported
    (for the list its release accepts) only for a value outside WANDB_MODES."""
    value = os.environ.get("WANDB_MODE")
    if value is None or value in WANDB_MODES or logger_cfg.mode == "disabled":
        return
    accepted = installed_wandb_modes()
    if value in accepted:
        return
    shown = "empty" if value == "" else f"'{value}'"
    raise ConfigError(
        f"the environment variable WANDB_MODE is {shown}, which wandb refuses (it accepts {', '.join(accepted)}); "
        f"unset it (logger.mode={logger_cfg.mode} then chooses) or set it to one of those values"
    )


class Tracker:
    def __init__(self, cfg, run_dir: Path, config: dict, active: bool):
        self.run = None
        self.run_dir = Path(run_dir)
        self.upload_artifacts = bool(cfg.upload_artifacts)
        self.final_outputs: list[Path] = []
        if not active or cfg.mode == "disabled":
            return
        import wandb

        check_wandb_mode(cfg)  # before wandb.init, which would fail with a traceback
        id_file = self.run_dir / "wandb_id.txt"
        # Our own id (8 characters of [0-9a-f], valid for every wandb release): wandb.util.generate_id is gone
        # from wandb 0.31, and a resumed run must find the id it started with.
        run_id = id_file.read_text().strip() if id_file.is_file() else secrets.token_hex(4)
        id_file.write_text(run_id)
        sweep_group, overrides = hydra_job(self.run_dir)
        name = cfg.name or run_name(str(config.get("experiment_name", "run")), overrides)
        group = cfg.group or sweep_group
        self.run = wandb.init(
            project=cfg.project, entity=cfg.entity, name=name, group=group, tags=list(cfg.tags),
            mode=cfg.mode, dir=str(self.run_dir), config=config, id=run_id, resume="allow",
        )
        log.info("wandb %s run %s (%s%s) in %s", cfg.mode, run_id, name, f", group {group}" if group else "",
                 self.run_dir)

    def log(self, metrics: dict, step: int) -> None:
        if self.run is not None:
            self.run.log(metrics, step=step)

    def histogram(self, name: str, values, step: int) -> None:
        if self.run is not None:
            import wandb

            self.run.log({name: wandb.Histogram(values)}, step=step)

    def image(self, name: str, path: Path, step: int) -> None:
        if self.run is not None:
            import wandb

            self.run.log({name: wandb.Image(str(path))}, step=step)

    def add_final_outputs(self, *paths: Path) -> None:
        """The final weights of a completed run (called by the stage's ``save_outputs``): uploaded with
        results.json as one artifact at ``finish`` when ``logger.upload_artifacts`` is set."""
        self.final_outputs += [Path(p) for p in paths]

    def finish(self) -> None:
        """End the wandb run; called after the run's final results.json is written."""
        if self.run is not None:
            if self.upload_artifacts and self.final_outputs:
                self._log_artifact()
            self.run.finish()
            self.run = None

    def _log_artifact(self) -> None:
        """One ``model`` artifact, ``<weights file stem>-<run id>`` (e.g. ``pretrained-1a2b3c4d``), holding the
        weights and results.json, with the run's status and final metrics as metadata. The files are referenced
        where they are (policy ``immutable``: they are final), not copied into wandb's staging folder in the home
        directory: weights can be gigabytes. Offline, ``wandb sync`` uploads them from the run folder."""
        import wandb

        results_path = self.run_dir / "results.json"
        results = json.loads(results_path.read_text()) if results_path.is_file() else {}
        metadata = {k: results[k] for k in ("stage", "experiment", "status", "final") if k in results}
        artifact = wandb.Artifact(f"{self.final_outputs[0].stem}-{self.run.id}", type="model", metadata=metadata)
        for path in [*self.final_outputs, results_path]:
            if path.is_file():
                artifact.add_file(str(path), name=path.name, policy="immutable")
        self.run.log_artifact(artifact)
        log.info("wandb artifact %s: %s", artifact.name, ", ".join(p.name for p in [*self.final_outputs, results_path]))
