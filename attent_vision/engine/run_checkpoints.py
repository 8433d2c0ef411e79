"""The run's checkpoints: which one a run continues (refusing one of other settings), resuming from it, starting
over (refused over an earlier run's checkpoints unless archived), and saving the complete training state.

The checkpoint half of :class:`~attent_vision.engine.loop.Trainer` (which inherits it), kept apart from the loop
itself; it reads the trainer's model, optimizer, progress, timer and stage hooks.
"""

import logging
from pathlib import Path

from omegaconf import OmegaConf

from ..errors import CheckpointError
from .checkpoint import config_differences, restore_rng, training_state
from .distributed import all_reduce_sum, barrier, broadcast_object
from .timers import PhaseTimer

log = logging.getLogger("attent_vision.engine.loop")


class RunCheckpoints:
    def _checkpoint_to_resume(self) -> tuple[Path, dict] | None:
        """(path, state) of the checkpoint this run continues, or None for a fresh start. A checkpoint written with
        other settings is refused with every difference listed (engine/run_identity.py says which keys may change)."""
        resume = self.cfg.checkpoint.resume
        if resume in ("never", "archive"):
            self._start_over(resume)
            return None
        if resume == "auto":  # the newest readable checkpoint (rank 0 decides; the others read the same file)
            found = self.ckpt.newest_readable() if self.dist.is_main else None
            path = broadcast_object(found[0] if found else None, self.dist)
            if path is None:
                return None
            state = found[1] if self.dist.is_main else self.ckpt.load(path)
        else:
            path = Path(resume)
            state = self.ckpt.load(path)
        diffs = config_differences(state.get("config", {}), OmegaConf.to_container(self.cfg, resolve=True),
                                   self.resume_may_differ)
        if diffs:
            # Every key is named; values are shown for the first ten (a model preset alone changes a dozen keys).
            shown = "; ".join(diffs[:10]) + (f"; and {len(diffs) - 10} more: "
                                             + ", ".join(d.split(":")[0] for d in diffs[10:]) if diffs[10:] else "")
            raise CheckpointError(
                f"{path} was written by a run with other settings ({len(diffs)} differ: {shown}); resume it with "
                "its original settings, start this run in another folder (hydra.run.dir=...), or set "
                "checkpoint.resume=archive to move the earlier run to <run>/archived/ and start over here")
        return Path(path), state

    def _resume(self, path: Path, state: dict) -> None:
        """Continue from checkpoint ``state`` (found and checked by ``_checkpoint_to_resume``)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.progress = self.progress_type.from_state(state["progress"])
        self.timer = PhaseTimer(self.device, self.progress.timers)
        self.load_extra_state(state)
        restore_rng(state, self.device)
        log.info("resumed from %s at epoch %d step %d (global step %d)", path, self.progress.epoch + 1,
                 self.progress.step_in_epoch, self.progress.global_step)

    def _start_over(self, resume: str) -> None:
        """A fresh run in this folder: refused when an earlier run's checkpoints are there (they would mix with the
        new ones), unless ``archive`` moves that run's files to <run>/archived/<time>/ first."""
        earlier = self.ckpt.checkpoints()
        if earlier and resume == "never":
            raise CheckpointError(
                f"{self.run_dir} holds checkpoints of an earlier run (newest {earlier[-1].name}); resume it "
                "(checkpoint.resume=auto), give this run another hydra.run.dir, or set checkpoint.resume=archive to "
                "move the earlier run's files to <run>/archived/ and start over")
        if earlier and self.dist.is_main:
            where = self.ckpt.archive_run(self.run_dir)
            log.warning("moved the earlier run's checkpoints and results to %s; starting over", where)
        barrier(self.dist)

    def save(self) -> None:
        """Checkpoint the complete training state (rank 0 writes; all ranks wait). Saving twice at one step is a
        no-op, so callers need not coordinate."""
        p = self.progress
        if self._saved_at == p.global_step:
            return
        self._saved_at = p.global_step
        with self.timer.phase("checkpoint"):
            p.epoch_sums = None
            if p.step_in_epoch and self._epoch_sums is not None:  # mid-epoch: keep the loss so far
                p.epoch_sums = all_reduce_sum(self._epoch_sums.clone(), self.dist).tolist()
            extra = self.extra_state()  # on every rank: it may sum over ranks
            if self.dist.is_main:
                p.timers, wall = self.timer.snapshot(), p.wall_s
                p.wall_s = self.wall()
                state = training_state(model=self.model, optimizer=self.optimizer, scaler=self.scaler,
                                       progress=p.to_state(), cfg=self.cfg, device=self.device, **extra)
                p.wall_s = wall
                self.ckpt.save(state, p.global_step)
            barrier(self.dist)
