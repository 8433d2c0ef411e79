"""Experiment tracking: Weights & Biases when enabled (offline and online modes), nothing otherwise.

wandb stays disabled by default so that no run ever needs network access. The run id is stored in the run
folder, so a resumed run continues the same wandb run instead of starting a new one.
"""

import logging
import secrets
from pathlib import Path

log = logging.getLogger(__name__)


class Tracker:
    def __init__(self, cfg, run_dir: Path, config: dict, active: bool):
        self.run = None
        if not active or cfg.mode == "disabled":
            return
        import wandb

        id_file = Path(run_dir) / "wandb_id.txt"
        # Our own id (8 characters of [0-9a-f], valid for every wandb release): wandb.util.generate_id is gone
        # from wandb 0.31, and a resumed run must find the id it started with.
        run_id = id_file.read_text().strip() if id_file.is_file() else secrets.token_hex(4)
        id_file.write_text(run_id)
        self.run = wandb.init(
            project=cfg.project, entity=cfg.entity, name=cfg.name, group=cfg.group, tags=list(cfg.tags),
            mode=cfg.mode, dir=str(run_dir), config=config, id=run_id, resume="allow",
        )
        log.info("wandb %s run %s in %s", cfg.mode, run_id, run_dir)

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

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
