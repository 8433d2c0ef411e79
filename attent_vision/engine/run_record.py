"""The run's record: one history entry per epoch, results.json (while running and at the end) and the final status.

The record-keeping half of :class:`~attent_vision.engine.loop.Trainer` (which inherits it), kept apart from the
loop itself; it reads the trainer's progress, timer, stage hooks and tracker.
"""

import logging

from omegaconf import OmegaConf

from ..errors import UserError
from .console import format_metrics, format_seconds
from .nonfinite import DIVERGED_EXIT_CODE, Divergence
from .results import COMPLETED, DIVERGED, FAILED, INTERRUPTED, RUNNING, RunResults, write_json_atomic

log = logging.getLogger("attent_vision.engine.loop")


def tracker_metrics(metrics: dict, prefixes: tuple[str, ...]) -> dict:
    """results.json names -> tracker names, for the evaluation metrics named <prefix>_<name> (a stage's
    ``metric_prefixes``): val_loss -> val/loss, probe_knn_top1 -> probe/knn_top1."""
    return {key.replace("_", "/", 1): value for key, value in metrics.items() if key.startswith(prefixes)}


def latest_metrics(history: list[dict], prefix: str) -> dict:
    """The ``prefix`` metrics of the last history entry that has any (evaluations need not run every epoch)."""
    entry = next((h for h in reversed(history) if any(k.startswith(prefix) for k in h)), {})
    return {k: v for k, v in entry.items() if k.startswith(prefix)}


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
            self.tracker.log(tracker_metrics(metrics, self.metric_prefixes) | {"time/wall_s": entry["wall_s"]},
                             p.global_step)
            write_json_atomic(self.results(RUNNING), self.run_dir / "results.json")

    def results(self, status: str) -> dict:
        p = self.progress
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
            final={k: v for prefix in self.metric_prefixes for k, v in latest_metrics(p.history, prefix).items()}
            | {k: v for k, v in last.items() if k.startswith("train_")},
            epochs=self.num_epochs, epochs_completed=p.epoch, optimizer_steps=p.global_step,
            planned_optimizer_steps=self.total_steps, samples_seen=p.samples_seen, bad_samples=p.bad_samples,
            bad_examples=p.bad_examples, time_s=times, history=p.history,
            exit_code=p.exit_code if status in (INTERRUPTED, DIVERGED, FAILED) else 0, diverged=p.diverged,
            config=OmegaConf.to_container(self.cfg, resolve=True), provenance=self.provenance,
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
                         "eval %.1fs%s)", format_metrics(results["final"]) or "no evaluation",
                         results["optimizer_steps"], results["samples_seen"], tm["total"], tm["train"], tm["scoring"],
                         tm["data_wait"], tm["eval"], f", probes {tm['probe']:.1f}s" if tm.get("probe") else "")
        self.tracker.finish()
        return results
