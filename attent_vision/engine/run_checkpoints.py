"""The run's checkpoints: which one a run continues (refusing one of other settings or of other training data),
resuming from it, starting over (refused over an earlier run's checkpoints or outputs unless archived), and saving
the complete training state.

The checkpoint half of :class:`~attent_vision.engine.loop.Trainer` (which inherits it), kept apart from the loop
itself; it reads the trainer's model, optimizer, progress, timer and stage hooks.
"""

import logging
import re
from pathlib import Path

from omegaconf import OmegaConf

from ..errors import CheckpointError, UserError
from .checkpoint import archive_run, config_differences, earlier_outputs, restore_rng, training_state
from .distributed import all_reduce_sum, barrier, broadcast_object
from .results import recorded_config
from .timers import PhaseTimer

log = logging.getLogger("attent_vision.engine.loop")

# The temporary sibling of an atomic write (atomic_files.py names it <name>.<8 hex digits>.tmp), left behind when
# its writer was killed before the rename; and the run's folders written that way (checkpoints/ is the
# CheckpointManager's; downstream/<task>/ is cleaned by that task's own run).
TEMPORARY = re.compile(r"^.+\.[0-9a-f]{8}\.tmp$")
ATOMIC_WRITE_FOLDERS = (".", "downstream", "reconstructions")
START_OVER = ("set checkpoint.resume=archive for this one invocation (it moves the earlier run's files to "
              "<run>/archived/ and starts over here; left in a requeued job's command it would start over on every "
              "requeue), or give this run another hydra.run.dir")


def listed(diffs: list[str]) -> str:
    """Every differing key is named; values are shown for the first ten (a model preset alone changes a dozen)."""
    return f"{len(diffs)} differ: " + "; ".join(diffs[:10]) + (
        f"; and {len(diffs) - 10} more: " + ", ".join(d.split(":")[0] for d in diffs[10:]) if diffs[10:] else "")


class RunCheckpoints:
    def _decided_on_main(self, work):
        """``work()`` on rank 0 (its result there; None elsewhere). An error it raises (a user error, a storage
        problem) is raised on every rank, so that no rank waits forever in a collective that rank 0 never reaches."""
        result = error = None
        if self.dist.is_main:
            try:
                result = work()
            except (UserError, OSError) as e:
                error = e
        message = broadcast_object(None if error is None else str(error), self.dist)
        if error is not None:
            raise error
        if message is not None:  # another rank: rank 0 reports the error itself
            raise CheckpointError(message)
        return result

    def _checkpoint_to_resume(self) -> tuple[Path, dict] | None:
        """(path, state) of the checkpoint this run continues, or None for a fresh start. A checkpoint written with
        other settings is refused with every difference listed (engine/run_identity.py says which keys may change)."""
        resume = self.cfg.checkpoint.resume
        self._decided_on_main(self._remove_stale_temporaries)
        if resume in ("never", "archive"):
            self._start_over(resume)
            return None
        if resume == "auto":  # the newest readable checkpoint (rank 0 decides; the others read the same file)
            found = self._decided_on_main(self.ckpt.newest_readable)
            path = broadcast_object(found[0] if found else None, self.dist)
            if path is None:  # no checkpoint: a fresh run, with the same checks of what the folder holds
                self._start_over(resume)
                return None
            state = found[1] if self.dist.is_main else self.ckpt.load(path)
        else:
            path = Path(resume)
            state = self.ckpt.load(path)
        diffs = config_differences(state.get("config", {}), OmegaConf.to_container(self.cfg, resolve=True),
                                   self.resume_may_differ)
        if diffs:
            raise CheckpointError(f"{path} was written by a run with other settings ({listed(diffs)}); resume it with "
                                  f"its original settings, or {START_OVER}")
        return Path(path), state

    def _check_training_data(self, resume_from: tuple[Path, dict] | None) -> None:
        """Right after ``setup`` (which scans the data), before any state is loaded: the training set's fingerprint
        (the stage's ``data_fingerprint``, data/fingerprint.py), kept for the checkpoints and, on resume, compared
        with the checkpoint's. Data that changed since is refused in one line saying what changed (a new sample
        count would otherwise fail deep in the teacher's score table). Rank 0 decides."""
        def check():
            fingerprint = self.data_fingerprint()
            if resume_from is None or fingerprint is None:
                return fingerprint
            path, state = resume_from
            saved = state.get("data_fingerprint")
            if saved is None:
                log.info("%s records no fingerprint of its training data (written by an earlier version): the data "
                         "is not compared with the checkpoint's", path.name)
            elif change := fingerprint.change_from(saved):
                raise CheckpointError(f"the training data in {fingerprint.root} changed since {path} was written "
                                      f"({change}), so resuming would continue the run on other data; put the data "
                                      f"back as it was, or {START_OVER}")
            return fingerprint

        self._data_fingerprint = self._decided_on_main(check)  # rank 0's (it writes the checkpoints)

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
        """A fresh run in this folder. Refused where an earlier run's files would be mixed with the new ones or
        taken for its own (``_earlier_run_problem``), unless ``archive`` moves everything that run produced to
        <run>/archived/<time>/ first. Rank 0 decides and archives; the broadcast makes the others wait for it."""
        def decide() -> None:
            problem = self._earlier_run_problem(resume)
            if problem:
                raise CheckpointError(problem)
            if resume == "archive" and (found := earlier_outputs(self.run_dir)):
                where = archive_run(self.run_dir)
                log.warning("moved the earlier run's files (%s) to %s; starting over", ", ".join(found), where)

        self._decided_on_main(decide)

    def _earlier_run_problem(self, resume: str) -> str | None:
        """Why a fresh run may not start here (None: it may): checkpoints of an earlier run (with ``never``: auto
        resumes them); without checkpoints, its outputs when their recorded config differs from this run's in keys
        that matter or is not recorded (they would be replaced without a word), and fine-tunes of its weights in
        downstream/ (this run's downstream suite would resume them and report them as its own)."""
        if resume == "archive":
            return None
        earlier = self.ckpt.checkpoints()
        if earlier:
            return (f"{self.run_dir} holds checkpoints of an earlier run (newest {earlier[-1].name}); resume it "
                    f"(checkpoint.resume=auto), or {START_OVER}")
        outputs = [name for name in earlier_outputs(self.run_dir) if name != "checkpoints"]
        if not outputs:
            return None
        if "downstream" in outputs:
            return (f"{self.run_dir / 'downstream'} holds fine-tunes of an earlier run's weights and no checkpoint of "
                    f"that run is left, so this run would report them as its own; {START_OVER}")
        record = recorded_config(self.run_dir)
        if record is None:
            return (f"{self.run_dir} holds outputs of an earlier run ({', '.join(outputs)}) but no checkpoints, and "
                    f"its settings are not recorded (no readable results.json or config.yaml); {START_OVER}")
        source, config = record
        diffs = config_differences(config, OmegaConf.to_container(self.cfg, resolve=True), self.resume_may_differ)
        if diffs:
            return (f"{self.run_dir} holds outputs of an earlier run with other settings ({', '.join(outputs)}; "
                    f"{source}: {listed(diffs)}) but no checkpoints, so they would be replaced; {START_OVER}")
        return None  # the same settings (an earlier attempt that stopped before its first checkpoint)

    def _remove_stale_temporaries(self) -> None:
        """Rank 0, at start: the temporaries a writer killed before its rename left in the run folder (results.json,
        pretrained.pth, finetuned.pth, selections.npz, downstream/downstream.json ...; checkpoints/ has its own)."""
        stale = [path for name in ATOMIC_WRITE_FOLDERS if (self.run_dir / name).is_dir()
                 for path in sorted((self.run_dir / name).iterdir()) if TEMPORARY.match(path.name) and path.is_file()]
        for path in stale:
            path.unlink(missing_ok=True)
        if stale:
            log.warning("removed %d temporary file(s) left by a write that was interrupted: %s", len(stale),
                        ", ".join(str(path.relative_to(self.run_dir)) for path in stale))

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
                fingerprint = getattr(self, "_data_fingerprint", None)  # what it trained on (_check_training_data)
                if fingerprint is not None:
                    extra["data_fingerprint"] = fingerprint.record
                state = training_state(model=self.model, optimizer=self.optimizer, scaler=self.scaler,
                                       progress=p.to_state(), cfg=self.cfg, device=self.device, **extra)
                p.wall_s = wall
                self.ckpt.save(state, p.global_step)
            barrier(self.dist)
