"""The run's record: one history entry per epoch, results.json (while running and at the end) and the final status.

The record-keeping half of :class:`~attent_vision.engine.loop.Trainer` (which inherits it), kept apart from the
loop itself; it reads the trainer's progress, timer, stage hooks and tracker.
"""

import logging

from ..errors import UserError
from .console import format_metrics, format_seconds
from .nonfinite import DIVERGED_EXIT_CODE, Divergence
from .results import COMPLETED, DIVERGED, FAILED, INTERRUPTED, RUNNING, RunResults, write_json_atomic

log = logging.getLogger("attent_vision.engine.loop")


class RunRecord:
    def record_epoch(self, epoch: int, stats: dict, metrics: dict) -> None:
        p = self.progress
        entry = {"epoch": epoch + 1, **self.epoch_record(epoch), "global_step": p.global_step,
                 "samples_seen": p.samples_seen, "wall_s": round(self.wall(), 3), "time_s": self.timer.snapshot(),
                 **{k: round(v, 6) for k, v in stats.items()}, **{k: round(v, 6) for k, v in metrics.items()}}
        p.history.append(entry)
        if self.dist.is_main:
            log.info("epoch %d/%d done | %s%s | %d samples seen | %s elapsed", epoch + 1, self.num_epochs,
                     f"train loss {stats['train_loss']:.4f} | " if stats else "",
                     format_metrics(metrics) if metrics else "no evaluation", p.samples_seen,
                     format_seconds(entry["wall_s"]))
            self.tracker.log({f"val/{k[4:]}": v for k, v in metrics.items()} | {"time/wall_s": entry["wall_s"]},
                             p.global_step)
            write_json_atomic(self.results(RUNNING), self.run_dir / "results.json")

    def results(self, status: str) -> dict:
        p = self.progress
        last_val = next((h for h in reversed(p.history) if any(k.startswith("val_") for k in h)), {})
        last = p.history[-1] if p.history else {}
        times = self.timer.snapshot()
        wall = round(self.wall(), 3)
        times["other"] = round(max(wall - sum(times.values()), 0.0), 3)
        times["total"] = wall
        record = RunResults(
            stage=self.stage, status=status, experiment=self.cfg.experiment_name, run_dir=str(self.run_dir),
            setting={**self.setting(), "seed": self.cfg.trainer.seed, "world_size": self.dist.world_size,
                     "device": str(self.device), "precision": self.precision},
            initial=p.initial,
            final={k: v for k, v in last_val.items() if k.startswith("val_")}
            | {k: v for k, v in last.items() if k.startswith("train_")},
            epochs=self.num_epochs, epochs_completed=p.epoch, optimizer_steps=p.global_step,
            planned_optimizer_steps=self.total_steps, samples_seen=p.samples_seen, bad_samples=p.bad_samples,
            bad_examples=p.bad_examples, time_s=times, history=p.history,
            exit_code=p.exit_code if status in (INTERRUPTED, DIVERGED, FAILED) else 0, diverged=p.diverged,
            details=self.result_details(),
        )
        return record.to_dict()

    def fail(self, error: UserError) -> None:
        """A user error stopped the run after it started (every sample of an epoch unreadable, a full disk):
        results.json says ``failed``, with the message under ``error``, never ``running``. Its checkpoints stay, so
        once the cause is fixed a rerun of the same command resumes."""
        self.progress.exit_code = error.exit_code
        if self.dist.is_main:
            try:
                write_json_atomic(self.results(FAILED) | {"error": str(error)}, self.run_dir / "results.json")
            except UserError as e:  # the disk is full or read-only: the run's error is what the user needs
                log.warning("results.json not updated: %s", e)
        self.tracker.finish()

    def finish(self, interrupted: bool, diverged: Divergence | None = None) -> dict:
        if diverged is not None:  # no outputs: the weights are not trustworthy; the last checkpoint is kept
            status, self.progress.exit_code = DIVERGED, DIVERGED_EXIT_CODE
            self.progress.diverged = {"step": diverged.step, "what": diverged.what}
            log.error("diverged: %s. Earlier checkpoints are kept and no weights were written; lower "
                      "optim.blr or optim.lr, set optim.clip_grad, or allow a few bad steps with "
                      "trainer.max_nonfinite_steps", diverged)
        elif interrupted:
            status = INTERRUPTED
            self.progress.exit_code = self.stop.exit_code
            log.warning("stopped at epoch %d step %d; rerun the same command in this run folder to resume",
                        self.progress.epoch + 1, self.progress.step_in_epoch)
        else:
            status = COMPLETED
            if self.dist.is_main:
                self.save_outputs()
        results = self.results(status)
        if self.dist.is_main:
            write_json_atomic(results, self.run_dir / "results.json")
            if status == COMPLETED:
                tm = results["time_s"]
                log.info("done: %s | %d steps, %d samples seen | %.1fs (train %.1fs, scoring %.1fs, data wait %.1fs, "
                         "eval %.1fs)", format_metrics(results["final"]) or "no evaluation", results["optimizer_steps"],
                         results["samples_seen"], tm["total"], tm["train"], tm["scoring"], tm["data_wait"], tm["eval"])
        self.tracker.finish()
        return results
