"""The training-loop core both stages share: run folder and ranks, loaders, model wrapping, the optimizer step,
checkpoints with exact resume, preemption, timers, tracking and results.json.

A stage (pretraining/trainer.py, finetuning/trainer.py) subclasses :class:`Trainer` and supplies what differs:
the model and data (``setup``), the optimiser and schedule, which samples an epoch trains on (``epoch_pool``:
the teacher's subset in pretraining), the loss of one micro-batch (``step_loss``), evaluation, and its own
fields of results.json. Reading order: ``__init__`` -> ``run`` -> ``_run_epochs`` -> ``train_epoch`` -> ``finish``.
"""

import logging
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from ..data.skipping import nothing_loaded
from ..errors import ConfigError, UserError
from ..storage import unattributed_error, writing
from .bars import console_logs_above_bars, progress_bar, show_bars
from .checkpoint import CheckpointManager
from .console import format_metrics, format_seconds
from .distributed import DistEnv, all_gather_objects, all_reduce_sum, broadcast_object, init_distributed
from .loaders import make_loader, shut_down_workers
from .nonfinite import Divergence, NonFiniteGuard
from .preemption import StopRequested
from .provenance import provenance
from .run_checkpoints import RunCheckpoints
from .run_lock import RunFolderLock
from .run_record import RunRecord, tracker_metrics
from .runtime import configure_backends, grad_scaler, resolve_precision, wrap_model
from .sampler import EpochBatchSampler, step_shapes
from .stage import StageHooks, StoppedInHook
from .timers import PhaseTimer
from .tracking import Tracker

log = logging.getLogger(__name__)

STOPPED_EARLY = "stopped_early"  # the history entry of the epoch after which the stage ended training (training_done)


class Trainer(StageHooks, RunRecord, RunCheckpoints):
    """One training run of a stage, from its config into its run folder (resumed when the folder has checkpoints).
    What the stage supplies is documented in engine/stage.py."""

    def __init__(self, cfg, run_dir: str | Path, dist: DistEnv | None = None):
        self.cfg = cfg
        self.dist = dist or init_distributed(cfg.trainer.device)
        # All ranks work in rank 0's run folder (torchrun starts one Hydra app per rank, each with its own folder).
        self.run_dir = Path(broadcast_object(str(run_dir), self.dist))
        with writing(self.run_dir):  # a read-only or full disk: one line naming the folder (storage.py)
            self.run_dir.mkdir(parents=True, exist_ok=True)
        # One run per folder; rank 0 holds the lock for all ranks until the run ends (or fails to start).
        self.lock = RunFolderLock(self.run_dir).acquire() if self.dist.is_main else None
        try:
            self._build()
        except BaseException:
            self.release_lock()
            raise

    def release_lock(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def _build(self) -> None:
        cfg, t = self.cfg, self.cfg.trainer
        self.device = self.dist.device
        self.show_bars = show_bars(t.progress_bar, self.dist.is_main)  # one rule for every bar (engine/bars.py)
        configure_backends(self.device)
        self.precision = resolve_precision(t.precision, self.device)
        self.wall_start = time.perf_counter()
        self.ckpt = CheckpointManager(self.run_dir / "checkpoints", cfg.checkpoint.keep_last)
        if self.dist.is_main:
            self.ckpt.remove_stale_temporaries()
        # Before the stage builds its data (which may generate a dataset): a checkpoint of other settings is
        # refused, and an earlier run archived, before any work.
        resume_from = self._checkpoint_to_resume()
        torch.manual_seed(t.seed)  # identical initial weights on every rank
        self.setup()
        self._check_training_data(resume_from)  # the data it scanned is what the checkpoint was trained on

        ws = self.dist.world_size
        self.global_batch = t.batch_size
        if self.global_batch % ws:
            raise ConfigError(f"trainer.batch_size={self.global_batch} (the global batch) must be divisible by the "
                              f"{ws} ranks")
        self.micro_batch = getattr(t, "micro_batch_size", None) or self.global_batch // ws
        self.num_train = len(self.train_dataset)
        # A batch larger than the training set would make every full epoch one short step at a learning rate scaled
        # for the batch asked for (optim.py). Subset epochs smaller than a batch are planned and fine; an
        # evaluation-only run (no epochs) trains no batch.
        if self.num_epochs and self.global_batch > self.num_train:
            raise ConfigError(f"trainer.batch_size={self.global_batch} is larger than the training set "
                              f"({self.num_train} samples): an epoch could not fill one batch, and the learning rate "
                              "would be scaled for the larger batch (optim.blr * batch_size / 256); set "
                              f"trainer.batch_size to at most {self.num_train}")
        self.sampler = EpochBatchSampler(num_samples=self.num_train, global_batch=self.global_batch,
                                         micro_batch=self.micro_batch, seed=t.seed, rank=self.dist.rank,
                                         world_size=ws, drop_last=self.drop_last)
        self.train_loader = make_loader(self.train_dataset, self.sampler, cfg.data, self.device, t.seed)
        self.total_steps = sum(self.steps_in_epoch(e) for e in range(self.num_epochs))
        if self.total_steps == 0 and self.num_epochs:
            raise ConfigError(f"trainer.batch_size={self.global_batch} exceeds the {self.num_train} training samples "
                              "(only full batches are used); lower trainer.batch_size")
        self.optimizer, self.scheduler = self.build_optimization()
        self.scaler = grad_scaler(self.precision, self.device)
        self.train_model = wrap_model(self.model, self.device, self.dist.distributed, t.compile)

        self.progress = self.progress_type()
        self.timer = PhaseTimer(self.device)
        if resume_from is not None:
            self._resume(*resume_from)
        self.steps_at_start = self.progress.global_step
        self._saved_at = self.steps_at_start if self.steps_at_start else None  # resumed from this step's checkpoint
        self._epoch_sums: torch.Tensor | None = None
        if self.dist.is_main:
            OmegaConf.save(cfg, self.run_dir / "config.yaml", resolve=True)
        self.tracker = Tracker(cfg.logger, self.run_dir, OmegaConf.to_container(cfg, resolve=True), self.dist.is_main)
        self.stop = StopRequested()
        self.provenance = provenance(self.device) if self.dist.is_main else {}  # code, libraries, host (results.json)
        self.guard = NonFiniteGuard(t.max_nonfinite_steps)

    # --------------------------------------------------------------------------------------------- helpers
    def steps_in_epoch(self, epoch: int) -> int:
        return len(step_shapes(self.epoch_size(epoch), self.global_batch, self.dist.world_size, self.micro_batch,
                               self.drop_last))

    def wall(self) -> float:
        return self.progress.wall_s + time.perf_counter() - self.wall_start

    def stop_requested(self, agree: bool = True) -> bool:
        """Whether a signal or ``trainer.stop_after_steps`` asks to stop (after saving a checkpoint). Ranks may get
        a signal at different moments, so under DDP they act on it together, at steps where ``agree`` is set (log
        steps and epoch ends): agreeing every step would cost a cross-rank synchronisation per step."""
        limit = self.cfg.trainer.stop_after_steps
        if limit and self.progress.global_step - self.steps_at_start >= limit:
            self.save()  # the same step on every rank: no agreement needed
            return True
        pending = self.stop.pending
        if self.dist.distributed:
            if not agree:
                return False
            flag = torch.tensor([float(pending or 0)], device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            pending = int(flag.item()) or None
            self.stop.pending = pending
        if pending is None:
            return False
        self.save()
        return self.stop.act()

    # ------------------------------------------------------------------------------------------------ the run
    def run(self) -> dict:
        if self.dist.is_main:
            log.info("run folder: %s", self.run_dir)
            for line in self.describe():
                log.info(line)
        self.stop.install()
        try:
            try:
                try:
                    with console_logs_above_bars(self.show_bars):  # log lines print above the bars, not glued to them
                        interrupted, diverged = self._run_epochs(), None
                except Divergence as e:
                    interrupted, diverged = False, e
                except StoppedInHook:  # stopped inside a hook's own run (engine/stage.py): no checkpoint of ours
                    interrupted, diverged = True, None
                # Inside the handler below: the final writes (weights, figures, selections, results.json) meet a
                # full disk as often as the checkpoints do, and the run must not be left saying "running".
                return self.finish(interrupted, diverged)
            except (UserError, OSError) as e:  # met while training or finishing (unreadable data, a full disk)
                # An OSError that did not name its file (a figure's writer) names the run folder.
                error = e if isinstance(e, UserError) else unattributed_error(e, self.run_dir)
                if error is None:
                    raise
                self.fail(error)  # results.json says failed, with the error (a warning if it cannot be written)
                if error is e:
                    raise
                raise error from e
        finally:
            for held in list(vars(self).values()):  # the core's loader and any a stage keeps (scoring, validation)
                if isinstance(held, DataLoader):
                    shut_down_workers(held)
            self.release_lock()
            # Signals stay ours until results.json is written (a second SIGTERM while finishing must not kill the
            # process with the run still "running"); one that arrived meanwhile is honoured now.
            self.stop.restore_and_resend_late()

    def _run_epochs(self) -> bool:
        cfg, t, p = self.cfg, self.cfg.trainer, self.progress
        self.scheduler.step_update(p.global_step)
        if p.global_step == 0 and not p.initial and (self.evaluate_at_start or self.num_epochs == 0):
            p.initial = self.evaluate_initial()  # the reference point for "the model learned something"
            if p.initial and self.dist.is_main:
                log.info("at initialisation: %s", format_metrics(p.initial))
                self.tracker.log(tracker_metrics(p.initial, self.metric_prefixes), 0)  # step 0: the untrained model
            if self.num_epochs == 0:  # evaluation only
                self.after_epoch(-1, True, p.initial)
                self.record_epoch(-1, {}, p.initial)
        if p.history and p.history[-1].get(STOPPED_EARLY):  # resumed from the checkpoint of an early stop
            return False
        for epoch in range(p.epoch, self.num_epochs):
            start_step = p.step_in_epoch
            self.sampler.set_epoch(epoch, self.epoch_pool(epoch, resuming=start_step > 0), start_step)
            train_before, wait_before = self.timer.totals["train"], self.timer.totals["data_wait"]
            with self.timer.phase("train", sync=True):
                stats = self.train_epoch(epoch, start_step)
            # Data waiting happened inside the training phase: charge it to data only.
            waited = self.timer.totals["data_wait"] - wait_before
            self.timer.totals["train"] -= waited
            if stats is None:
                return True  # interrupted; the checkpoint is saved
            trained = self.timer.totals["train"] - train_before
            size = self.epoch_size(epoch)
            if trained > 0:  # training-step throughput (compute only) and including data waiting
                stats["step_samples_per_s"] = size / trained
                stats["epoch_samples_per_s"] = size / (trained + waited)
            p.epoch, p.step_in_epoch = epoch + 1, 0
            last = epoch == self.num_epochs - 1
            every = t.val_every_epochs
            metrics = self.evaluate() if last or (every and (epoch + 1) % every == 0) else {}
            self.after_epoch(epoch, last, metrics)
            self.record_epoch(epoch, stats, metrics)
            early = self.training_done(epoch, {**stats, **metrics}) and not last  # the stage's early stop
            if early:
                p.history[-1][STOPPED_EARLY] = True  # in the checkpoint below: a resumed run trains no more
            if last or early or (cfg.checkpoint.every_epochs and (epoch + 1) % cfg.checkpoint.every_epochs == 0):
                self.save()
            if early:
                return False
            if self.stop_requested():
                return True
        return False

    def train_epoch(self, epoch: int, start_step: int) -> dict | None:
        """Run the optimizer steps of ``epoch`` from ``start_step``; None when stopped by a signal or a step limit."""
        cfg, t, p = self.cfg, self.cfg.trainer, self.progress
        shapes = self.sampler.shapes()
        names = ["loss", *self.train_metric_names]
        # Loss sums stay on the device; they are read only at log steps, so steps never wait for the host.
        sums = torch.zeros(len(names) + 1, device=self.device, dtype=torch.float64)  # [weight, loss, *metrics]
        if start_step and p.epoch_sums and self.dist.is_main:  # the (all-ranks) sums of the steps already done
            sums += torch.tensor(p.epoch_sums, dtype=torch.float64, device=self.device)
        self._epoch_sums = sums
        bad: list[str] = []
        bad_index: list[int] = []  # their training-set indices (a sample counts once per run: Progress.record_bad)
        self.model.train()
        it = iter(self.train_loader)
        bar = progress_bar(total=len(shapes), initial=start_step, desc=f"epoch {epoch + 1}/{self.num_epochs}",
                           show=self.show_bars)
        epoch_start, steps_run = time.perf_counter(), 0
        for step in range(start_step, len(shapes)):
            shape = shapes[step]
            self.optimizer.zero_grad(set_to_none=True)
            step_sums = torch.zeros_like(sums)
            for micro in range(shape.micro_batches):
                wait_start = time.perf_counter()
                batch = next(it)
                self.timer.add("data_wait", time.perf_counter() - wait_start)
                bad += batch.get("bad", [])
                bad_index += batch.get("bad_index", [])
                if "index" not in batch:  # every sample of this micro-batch failed to load (skip_bad_samples)
                    continue
                accumulate = self.dist.distributed and micro < shape.micro_batches - 1
                with self.train_model.no_sync() if accumulate else nullcontext():
                    loss, row = self.step_loss(batch, shape)
                    self.scaler.scale(loss).backward()
                step_sums += row.detach().double()
            if self.guard.step_is_finite(step_sums[1], self.model, self.optimizer, self.scaler, cfg.optim.clip_grad,
                                         p.global_step + 1, self.dist.distributed):
                sums += step_sums
            else:  # a non-finite loss or gradient: no update (the step below has no gradients to apply)
                self.optimizer.zero_grad(set_to_none=True)
                log.warning("step %d: non-finite loss or gradient, update skipped", p.global_step + 1)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            p.global_step += 1
            p.step_in_epoch = step + 1
            p.samples_seen += shape.global_count
            self.scheduler.step_update(p.global_step)
            steps_run += 1
            bar.update(1)
            log_step = p.global_step % t.log_every_steps == 0
            if log_step or step == len(shapes) - 1:
                self._log_step(epoch, step, len(shapes), sums, names, epoch_start, steps_run, bar)
            every = cfg.checkpoint.every_steps
            if every and p.global_step % every == 0 and step < len(shapes) - 1:
                self.save()
            # At an epoch's last step the epoch-end check takes over (after validation and bookkeeping).
            if step < len(shapes) - 1 and self.stop_requested(agree=log_step):
                bar.close()
                return None
        bar.close()
        all_reduce_sum(sums, self.dist)
        # Every rank's skipped samples: rank 0 writes the count, and every rank must agree to stop below.
        shards = all_gather_objects((bad, bad_index), self.dist)
        bad, bad_index = [m for b, _ in shards for m in b], [i for _, ix in shards for i in ix]
        if bad:
            p.record_bad(bad, bad_index)
            log.warning("epoch %d: skipped %d samples that failed to load (first: %s)", epoch + 1, len(bad),
                        " | ".join(bad[:3]))
        if bad and not float(sums[0]):  # skip mode, and not one sample of the epoch loaded on any rank
            raise nothing_loaded(f"training sample of epoch {epoch + 1}", len(bad), bad)
        means = (sums[1:] / sums[0].clamp_min(1)).tolist()
        return {f"train_{name}": mean for name, mean in zip(names, means)}

    def _log_step(self, epoch, step, steps, sums, names, epoch_start, steps_run, bar) -> None:
        local = sums.detach().cpu()
        means = dict(zip(names, (local[1:] / max(float(local[0]), 1.0)).tolist()))
        elapsed = time.perf_counter() - epoch_start
        rate = float(local[0]) * self.dist.world_size / max(elapsed, 1e-9)
        eta = elapsed / max(steps_run, 1) * (self.total_steps - self.progress.global_step)
        lr = max(g["lr"] for g in self.optimizer.param_groups)
        if self.dist.is_main:
            detail = " ".join(f"{n} {means[n]:.4f}" for n in names[1:])
            label = self.epoch_label(epoch)
            bar.set_postfix_str(f"loss {means['loss']:.4f} (epoch mean)")
            log.info("epoch %d/%d%s step %d/%d | loss %.4f (epoch mean so far%s) | lr %.2e | %.0f samples/s | ETA %s",
                     epoch + 1, self.num_epochs, f" [{label}]" if label else "", step + 1, steps, means["loss"],
                     f": {detail}" if detail else "", lr, rate, format_seconds(eta))
        metrics = {f"train/{n}": v for n, v in means.items()}
        metrics.update({"train/lr": lr, "train/samples_per_s": rate, "train/samples_seen": self.progress.samples_seen,
                        "train/epoch": epoch + 1})
        self.tracker.log(metrics, self.progress.global_step)
