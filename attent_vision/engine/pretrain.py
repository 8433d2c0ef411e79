"""The pretraining loop: MultiMAE on the teacher's plan, with validation, checkpoints and results.json.

Reading order: ``Pretrainer.__init__`` builds everything (and resumes), ``run`` walks the epoch plan, asking the
teacher for each epoch's samples, ``train_epoch`` runs the optimizer steps, ``finish`` writes the final record.
"""

import logging
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.skipping import collate_skipping_bad
from ..errors import CheckpointError, ConfigError
from ..teaching.plan import SUBSET, build_plan
from ..teaching.sampler import EpochBatchSampler, ShardedBatches
from ..teaching.scoring import run_scoring_pass
from ..teaching.selection import build_strategy
from ..teaching.teacher import Teacher
from .builders import build_loss, build_pretrain_model, build_pretrain_views, dataset_root
from .checkpoint import CheckpointManager, atomic_torch_save, restore_rng, training_state
from .distributed import DistEnv, all_gather_cat, all_reduce_sum, barrier, broadcast_object, init_distributed
from .preemption import StopRequested
from .optim import absolute_lr, build_optimizer, build_scheduler
from .results import write_json_atomic
from .runtime import autocast, configure_backends, grad_scaler, resolve_precision
from .timers import PhaseTimer
from .tracking import Tracker
from .visualize import save_reconstructions

log = logging.getLogger(__name__)

# Config sections that decide what a run computes: resuming with different values would silently mix two runs.
RESUME_MUST_MATCH = ("model", "data.name", "data.root", "data.train_split", "data.synthetic", "optim", "ratio",
                     "interval", "selection", "teaching", "trainer.epochs", "trainer.batch_size", "trainer.seed")


def _flatten(d, prefix=""):
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def config_differences(saved: dict, current: dict) -> list[str]:
    diffs = []
    saved, current = OmegaConf.create(saved), OmegaConf.create(current)
    for section in RESUME_MUST_MATCH:
        a = OmegaConf.select(saved, section)
        b = OmegaConf.select(current, section)
        a = OmegaConf.to_container(a) if OmegaConf.is_config(a) else a
        b = OmegaConf.to_container(b) if OmegaConf.is_config(b) else b
        if isinstance(a, dict) or isinstance(b, dict):
            fa, fb = _flatten(a, section + "."), _flatten(b, section + ".")
            diffs += [f"{k}: {fa.get(k)!r} -> {fb.get(k)!r}" for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
        elif a != b:
            diffs.append(f"{section}: {a!r} -> {b!r}")
    return diffs


class Pretrainer:
    def __init__(self, cfg, run_dir: str | Path, dist: DistEnv | None = None):
        self.cfg = cfg
        self.dist = dist or init_distributed(cfg.trainer.device)
        # All ranks work in rank 0's run folder (torchrun starts one Hydra app per rank, each with its own folder).
        self.run_dir = Path(broadcast_object(str(run_dir), self.dist))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.device = self.dist.device
        configure_backends(self.device)
        t = cfg.trainer
        self.precision = resolve_precision(t.precision, self.device)
        self.wall_start = time.perf_counter()

        torch.manual_seed(t.seed)  # identical initial weights on every rank
        self.model = build_pretrain_model(cfg).to(self.device)
        self.loss_fn = build_loss(cfg, self.model)
        root = dataset_root(cfg) if self.dist.is_main else None
        barrier(self.dist)  # rank 0 may have generated the synthetic data
        root = broadcast_object(root, self.dist) or dataset_root(cfg)
        self.views = build_pretrain_views(cfg, self.model, root)
        self.num_samples = len(self.views["train"])

        s = cfg.selection
        self.plan = build_plan(
            num_samples=self.num_samples, epochs=t.epochs, strategy=s.strategy, total_cycles=cfg.teaching.total_cycles,
            ratio=cfg.ratio.schedule, initial_ratio=cfg.ratio.initial_ratio, final_ratio=cfg.ratio.final_ratio,
            interval=cfg.interval.schedule, initial_interval=cfg.interval.initial_interval,
            max_interval=cfg.interval.max_interval, reselect_every_subset_epoch=s.reselect_every_subset_epoch,
        )
        strategy = None if s.strategy == "none" else build_strategy(s.strategy, s.temperature, s.normalization)
        gather = (lambda x: all_gather_cat(x, self.dist)) if self.dist.distributed else None
        self.teacher = Teacher(self.plan, strategy, seed=t.seed, score_source=cfg.teaching.score_source,
                               device=self.device, gather=gather)

        self.global_batch = t.batch_size
        ws = self.dist.world_size
        if self.global_batch % ws:
            raise ConfigError(f"trainer.batch_size={self.global_batch} (the global batch) must be divisible by the "
                              f"{ws} ranks")
        self.micro_batch = t.micro_batch_size or max(1, self.global_batch // ws)
        self.sampler = EpochBatchSampler(num_samples=self.num_samples, global_batch=self.global_batch,
                                         micro_batch=self.micro_batch, seed=t.seed, rank=self.dist.rank, world_size=ws)
        self.train_loader = self._loader(self.views["train"], self.sampler)
        self.score_loader = None  # built on the first scoring pass (strategies without scores never need it)
        val = self.views["val"]
        max_val = cfg.data.max_val_samples
        self.val_loader = self._pass_loader(val, len(val) if max_val is None else min(len(val), max_val)) if val else None
        self.total_steps = self.plan.total_steps(self.global_batch)
        self.optimizer = build_optimizer(self.model, cfg.optim, self.global_batch, self.device)
        self.scheduler = build_scheduler(self.optimizer, self.total_steps,
                                         self.plan.warmup_steps(cfg.optim.warmup_epochs, self.global_batch),
                                         cfg.optim.min_lr)
        self.scaler = grad_scaler(self.precision, self.device)
        self.ddp_model = self._wrap(self.model)

        self.ckpt = CheckpointManager(self.run_dir / "checkpoints", cfg.checkpoint.keep_last)
        self.progress = dict(epoch=0, step_in_epoch=0, global_step=0, samples_seen=0, samples_scored=0,
                             scoring_passes=0, bad_samples=0, bad_examples=[], wall_s=0.0, history=[])
        self.timer = PhaseTimer(self.device)
        self._resume()
        self.steps_at_start = self.progress["global_step"]
        self._saved_at = self.steps_at_start if self.steps_at_start else None  # resumed from a checkpoint of this step
        self._epoch_sums: torch.Tensor | None = None
        if self.dist.is_main:
            OmegaConf.save(self.cfg, self.run_dir / "config.yaml", resolve=True)
        self.tracker = Tracker(cfg.logger, self.run_dir, OmegaConf.to_container(cfg, resolve=True), self.dist.is_main)
        self.stop = StopRequested()

    # -------------------------------------------------------------------------------------------------- set-up
    def _loader(self, view, batch_sampler) -> DataLoader:
        d = self.cfg.data
        workers = d.num_workers
        return DataLoader(
            view, batch_sampler=batch_sampler, num_workers=workers, collate_fn=collate_skipping_bad,
            pin_memory=d.pin_memory and self.device.type == "cuda",
            persistent_workers=d.persistent_workers and workers > 0,
            prefetch_factor=d.prefetch_factor if workers > 0 else None,
            # The loader's worker seeds come from this generator, never from the global RNG, so creating a loader
            # does not shift the random stream that the model (drop-path) uses.
            generator=torch.Generator().manual_seed(self.cfg.trainer.seed),
        )

    def _wrap(self, model):
        wrapped = model
        if self.dist.distributed:
            wrapped = DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if self.cfg.trainer.compile:
            wrapped = torch.compile(wrapped)
        return wrapped

    def _resume(self):
        resume = self.cfg.checkpoint.resume
        if resume == "never":
            return
        path = self.ckpt.latest() if resume == "auto" else Path(resume)
        path = broadcast_object(path, self.dist)
        if path is None:
            return
        state = self.ckpt.load(path)
        current = OmegaConf.to_container(self.cfg, resolve=True)
        diffs = config_differences(state.get("config", {}), current)
        if diffs:
            raise CheckpointError(
                f"{path} was written by a run with different settings ({'; '.join(diffs[:4])}); resume it with "
                "the original settings, or start a new run folder (or set checkpoint.resume=never)"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.teacher.load_state_dict(state["teacher"])
        self.progress.update(state["progress"])
        self.timer = PhaseTimer(self.device, state["progress"].get("timers"))
        restore_rng(state, self.device)
        log.info("resumed from %s at epoch %d step %d (global step %d)", path, self.progress["epoch"],
                 self.progress["step_in_epoch"], self.progress["global_step"])

    def _save(self):
        """Checkpoint the complete training state (rank 0 writes; all ranks wait). Saving twice at one step is a
        no-op, so callers need not coordinate."""
        if self._saved_at == self.progress["global_step"]:
            return
        self._saved_at = self.progress["global_step"]
        with self.timer.phase("checkpoint"):
            epoch_sums = None
            if self.progress["step_in_epoch"] and self._epoch_sums is not None:  # mid-epoch: keep the loss so far
                epoch_sums = all_reduce_sum(self._epoch_sums.clone(), self.dist).tolist()
            if self.dist.is_main:
                progress = dict(self.progress, timers=self.timer.snapshot(), wall_s=self._wall(), epoch_sums=epoch_sums)
                state = training_state(model=self.model, optimizer=self.optimizer, scaler=self.scaler,
                                       progress=progress, cfg=self.cfg, device=self.device,
                                       teacher=self.teacher.state_dict())
                self.ckpt.save(state, self.progress["global_step"])
            barrier(self.dist)

    def _wall(self) -> float:
        return self.progress["wall_s"] + time.perf_counter() - self.wall_start

    # ------------------------------------------------------------------------------------------------ one pass
    def _inputs(self, batch: dict) -> dict:
        nb = self.device.type == "cuda"
        return {k: v.to(self.device, non_blocking=nb) for k, v in batch.items() if k in ("rgb", "depth", "semseg")}

    def _forward(self, model, batch: dict):
        """Model and losses for one batch: returns (preds, masks, task losses, per-sample objective B)."""
        inputs = self._inputs(batch)
        with autocast(self.precision, self.device):
            preds, masks = model(inputs, task_masks=batch["masks"])
        losses = self.loss_fn(preds, inputs, masks)
        return preds, masks, losses, self.loss_fn.objective(losses)

    @torch.no_grad()
    def _per_sample_scores(self, batch: dict) -> torch.Tensor:
        return self._forward(self.model, batch)[3]

    def _pass_loader(self, view, num: int) -> DataLoader:
        """A loader for no-grad passes over ``num`` samples of ``view``, sharded across ranks, built once and
        reused (its workers persist between passes)."""
        bs = self.cfg.teaching.scoring_batch_size or self.cfg.trainer.eval_batch_size
        sampler = ShardedBatches(torch.arange(num), bs, rank=self.dist.rank, world_size=self.dist.world_size)
        return self._loader(view, sampler)

    def _score_all(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The scoring pass over every training sample (sharded across ranks)."""
        self.model.eval()
        if self.score_loader is None:
            self.score_loader = self._pass_loader(self.views["score"], self.num_samples)
        with self.timer.phase("scoring", sync=True):
            self.score_loader.batch_sampler.set_epoch(epoch)  # selects the noisy view's stream (scoring_view=paper)
            out = run_scoring_pass(self.score_loader, self._per_sample_scores, self.num_samples, self.dist)
        self.progress["samples_scored"] += self.num_samples
        self.progress["scoring_passes"] += 1
        self.model.train()
        return out

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation reconstruction loss: mean per-sample objective and per-task means, fixed masks and view."""
        if self.val_loader is None:
            return {}
        self.model.eval()
        tasks = list(self.loss_fn.tasks)
        sums = torch.zeros(2 + 2 * len(tasks), device=self.device, dtype=torch.float64)
        with self.timer.phase("eval", sync=True):
            for batch in self.val_loader:
                if "index" not in batch:
                    continue
                _, _, losses, per_sample = self._forward(self.model, batch)
                sums[0] += per_sample.sum()
                sums[1] += per_sample.numel()
                for i, task in enumerate(tasks):
                    sums[2 + 2 * i] += (losses[task].per_sample * losses[task].valid).sum()
                    sums[3 + 2 * i] += losses[task].valid.sum()
            all_reduce_sum(sums, self.dist)
        self.model.train()
        out = {"val_loss": float(sums[0] / sums[1].clamp_min(1))}
        for i, task in enumerate(tasks):
            out[f"val_{task}"] = float(sums[2 + 2 * i] / sums[3 + 2 * i].clamp_min(1))
        return out

    @torch.no_grad()
    def visualize(self, name: str) -> Path | None:
        view = self.views["val"] or self.views["score"]
        if not self.dist.is_main or self.cfg.trainer.num_vis_samples <= 0:
            return None
        with self.timer.phase("eval"):
            items = [view[i] for i in range(min(self.cfg.trainer.num_vis_samples, len(view)))]
            batch = collate_skipping_bad(items)
            if "index" not in batch:
                return None
            self.model.eval()
            preds, masks, _, _ = self._forward(self.model, batch)
            self.model.train()
            inputs = self._inputs(batch)
            return save_reconstructions(inputs, preds, masks, self.run_dir / "reconstructions" / f"{name}.png")

    # --------------------------------------------------------------------------------------------- training
    def train_epoch(self, spec, subset: torch.Tensor | None, start_step: int) -> dict:
        """Run the optimizer steps of one planned epoch (from ``start_step`` when resuming mid-epoch)."""
        cfg, t = self.cfg, self.cfg.trainer
        self.sampler.set_epoch(spec.epoch, subset, start_step)
        shapes = self.sampler.shapes()
        tasks = list(self.loss_fn.tasks)
        # Loss sums stay on the device; they are read only at log steps, so steps never wait for the host.
        sums = torch.zeros(2 + len(tasks), device=self.device, dtype=torch.float64)
        if start_step and self.progress.get("epoch_sums") and self.dist.is_main:
            # Resuming mid-epoch: the checkpoint holds the (all-ranks) sums of the steps already done.
            sums += torch.tensor(self.progress["epoch_sums"], dtype=torch.float64, device=self.device)
        self._epoch_sums = sums
        epoch_bad = []
        self.model.train()
        it = iter(self.train_loader)
        bar = tqdm(total=len(shapes), initial=start_step, desc=f"epoch {spec.epoch}", leave=False, dynamic_ncols=True,
                   disable=not (t.progress_bar and self.dist.is_main and sys.stderr.isatty()))
        epoch_start = time.perf_counter()
        steps_run = 0
        for step in range(start_step, len(shapes)):
            shape = shapes[step]
            self.optimizer.zero_grad(set_to_none=True)
            for micro in range(shape.micro_batches):
                wait_start = time.perf_counter()
                batch = next(it)
                self.timer.add("data_wait", time.perf_counter() - wait_start)
                epoch_bad += batch.get("bad", [])
                if "index" not in batch:  # every sample of this micro-batch failed to load (skip_bad_samples)
                    continue
                last = micro == shape.micro_batches - 1
                sync = self.ddp_model.no_sync() if (self.dist.distributed and not last) else nullcontext()
                with sync:
                    _, _, losses, per_sample = self._forward(self.ddp_model, batch)
                    weights = batch["weight"].to(self.device, torch.float32)
                    # Normalised by the global sample count (x ranks, since DDP averages over ranks), so the
                    # gradient is the full batch mean whatever the number of ranks and micro-batches.
                    loss = (per_sample * weights).sum() * (self.dist.world_size / shape.global_count)
                    self.scaler.scale(loss).backward()
                self.teacher.observe(batch["index"], per_sample, weights, self.progress["global_step"])
                with torch.no_grad():
                    sums[0] += (per_sample * weights).sum()
                    sums[1] += weights.sum()
                    for i, task in enumerate(tasks):
                        sums[2 + i] += (losses[task].per_sample * losses[task].valid * weights).sum()
            if cfg.optim.clip_grad:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.clip_grad)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.progress["global_step"] += 1
            self.progress["step_in_epoch"] = step + 1
            self.progress["samples_seen"] += shape.global_count
            self.scheduler.step_update(self.progress["global_step"])
            steps_run += 1
            bar.update(1)
            if self.progress["global_step"] % t.log_every_steps == 0 or step == len(shapes) - 1:
                self._log_step(spec, step, len(shapes), sums, tasks, epoch_start, steps_run, bar)
            every = cfg.checkpoint.every_steps
            if every and self.progress["global_step"] % every == 0 and step < len(shapes) - 1:
                self._save()
            # At an epoch's last step the epoch-end check takes over (after validation and bookkeeping).
            if step < len(shapes) - 1 and self._stop_requested(agree=self.progress["global_step"] % t.log_every_steps == 0):
                bar.close()
                return {"interrupted": True}  # checkpoint already saved
        bar.close()
        all_reduce_sum(sums, self.dist)
        if epoch_bad:
            self.progress["bad_samples"] += len(epoch_bad)
            self.progress["bad_examples"] = (self.progress["bad_examples"] + epoch_bad)[:5]
            log.warning("epoch %d: skipped %d samples that failed to load (first: %s)", spec.epoch, len(epoch_bad),
                        " | ".join(epoch_bad[:3]))
        train_loss = float(sums[0] / sums[1].clamp_min(1))
        out = {"train_loss": train_loss}
        for i, task in enumerate(tasks):
            out[f"train_{task}"] = float(sums[2 + i] / sums[1].clamp_min(1))
        return out

    def _stop_requested(self, agree: bool = True) -> bool:
        """Whether a signal or ``trainer.stop_after_steps`` asks to stop. Ranks may receive a signal at different
        moments, so under DDP they act on it together, at steps where ``agree`` is set (log steps and epoch ends):
        agreeing every step would cost a cross-rank synchronisation per step."""
        limit = self.cfg.trainer.stop_after_steps
        if limit and self.progress["global_step"] - self.steps_at_start >= limit:
            self._save()  # the same step on every rank: no agreement needed
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
        self._save()
        return self.stop.act()

    def _log_step(self, spec, step, steps, sums, tasks, epoch_start, steps_run, bar):
        local = sums.detach().cpu()
        denom = max(float(local[1]), 1.0)
        elapsed = time.perf_counter() - epoch_start
        rate = float(local[1]) * self.dist.world_size / max(elapsed, 1e-9)
        remaining = self.total_steps - self.progress["global_step"]
        eta = elapsed / max(steps_run, 1) * remaining
        lr = self.optimizer.param_groups[0]["lr"]
        per_task = " ".join(f"{task} {float(local[2 + i]) / denom:.4f}" for i, task in enumerate(tasks))
        kind = f"subset {spec.ratio:.2f}" if spec.kind == SUBSET else "full"
        message = (f"epoch {spec.epoch + 1}/{len(self.plan.epochs)} [{kind}] step {step + 1}/{steps} | "
                   f"loss {float(local[0]) / denom:.4f} ({per_task}) | lr {lr:.2e} | {rate:.0f} samples/s | "
                   f"ETA {_format_seconds(eta)}")
        if self.dist.is_main:
            bar.set_postfix_str(f"loss {float(local[0]) / denom:.4f}")
            log.info(message)
        metrics = {"train/loss": float(local[0]) / denom, "train/lr": lr, "train/samples_per_s": rate,
                   "train/samples_seen": self.progress["samples_seen"], "train/epoch": spec.epoch}
        metrics.update({f"train/{task}": float(local[2 + i]) / denom for i, task in enumerate(tasks)})
        self.tracker.log(metrics, self.progress["global_step"])

    # --------------------------------------------------------------------------------------------- the run
    def run(self) -> dict:
        cfg = self.cfg
        if self.dist.is_main:
            log.info("run folder: %s", self.run_dir)
            log.info("device %s, precision %s, %d rank(s), global batch %d (micro-batch %d), lr %.2e",
                     self.device, self.precision, self.dist.world_size, self.global_batch, self.micro_batch,
                     absolute_lr(cfg.optim.blr, cfg.optim.lr, self.global_batch))
            log.info("plan (%s selection, %s ratio, %s interval, %d samples):\n%s", cfg.selection.strategy,
                     cfg.ratio.schedule, cfg.interval.schedule, self.num_samples,
                     self.plan.table(self.global_batch, self.teacher.needs_scoring_pass))
        self.stop.install()
        try:
            interrupted = self._run_epochs()
        finally:
            self.stop.restore()
        return self.finish(interrupted)

    def _run_epochs(self) -> bool:
        cfg, t = self.cfg, self.cfg.trainer
        self.scheduler.step_update(self.progress["global_step"])
        if self.progress["global_step"] == 0 and "initial" not in self.progress:
            # The loss at initialisation: the reference point for "the model learned something".
            self.progress["initial"] = self.evaluate()
            if self.progress["initial"] and self.dist.is_main:
                log.info("val loss at initialisation: %.4f", self.progress["initial"]["val_loss"])
        for spec in self.plan.epochs[self.progress["epoch"] :]:
            start_step = self.progress["step_in_epoch"]
            if start_step > 0 and spec.kind == SUBSET:
                subset = self.teacher.subset  # resuming mid-epoch: this epoch's selection was already made
            else:
                passes_before = self.progress["scoring_passes"]
                scoring_before = self.timer.totals["scoring"]
                subset = self.teacher.indices_for_epoch(spec, lambda: self._score_all(spec.epoch),
                                                        self.progress["global_step"])
                if spec.select:
                    scoring_s = self.timer.totals["scoring"] - scoring_before
                    self.teacher.history[-1]["scoring_s"] = round(scoring_s, 3)
                    if scoring_s > 0:
                        self.teacher.history[-1]["scoring_samples_per_s"] = round(self.num_samples / scoring_s, 1)
                    self._log_selection(spec, self.progress["scoring_passes"] > passes_before)
            train_before, wait_before = self.timer.totals["train"], self.timer.totals["data_wait"]
            with self.timer.phase("train", sync=True):
                stats = self.train_epoch(spec, subset, start_step)
            # Data waiting happened inside the training phase: charge it to data only.
            waited = self.timer.totals["data_wait"] - wait_before
            self.timer.totals["train"] -= waited
            trained = self.timer.totals["train"] - train_before
            if not stats.get("interrupted") and trained > 0:
                # Training-step throughput (compute only) and the epoch's throughput including data waiting.
                stats["train_samples_per_s"] = spec.size / trained
                stats["epoch_samples_per_s"] = spec.size / (trained + waited)
            if stats.get("interrupted"):
                return True  # the checkpoint is saved
            self.progress["epoch"] = spec.epoch + 1
            self.progress["step_in_epoch"] = 0
            last = spec.epoch == len(self.plan.epochs) - 1
            val = self.evaluate() if (last or (t.val_every_epochs and (spec.epoch + 1) % t.val_every_epochs == 0)) else {}
            if t.vis_every_epochs and (spec.epoch + 1) % t.vis_every_epochs == 0 and not last:
                self.visualize(f"epoch_{spec.epoch + 1:04d}")
            self._record_epoch(spec, stats, val)
            if last or (cfg.checkpoint.every_epochs and (spec.epoch + 1) % cfg.checkpoint.every_epochs == 0):
                self._save()
            if self._stop_requested():
                return True
        return False

    def _log_selection(self, spec, scored: bool):
        rec = self.teacher.history[-1]
        if self.dist.is_main:
            stats = rec.get("scores", {})
            detail = (f"scores mean {stats['mean']:.4f} std {stats['std']:.4f} (p10 {stats['p10']:.4f}, p90 "
                      f"{stats['p90']:.4f}); selected mean {rec['selected_score_mean']:.4f}") if stats.get("scored") else "no scores needed"
            log.info("cycle %d epoch %d: selected %d/%d samples (ratio %.3f, interval %d)%s; %s", spec.cycle,
                     spec.epoch, spec.size, self.num_samples, spec.ratio, spec.interval,
                     " after a scoring pass" if scored else "", detail)
        metrics = {"teach/ratio": spec.ratio, "teach/subset_size": spec.size, "teach/interval": spec.interval,
                   "teach/cycle": spec.cycle, "time/scoring_s": self.timer.totals["scoring"]}
        metrics.update({f"teach/score_{k}": v for k, v in rec.get("scores", {}).items()})
        self.tracker.log(metrics, self.progress["global_step"])
        if rec.get("scores", {}).get("scored"):
            values = self.teacher.table.values.detach().float().cpu()
            self.tracker.histogram("teach/scores", values[torch.isfinite(values)].numpy(), self.progress["global_step"])

    def _record_epoch(self, spec, stats, val):
        entry = {"epoch": spec.epoch, "kind": spec.kind, "cycle": spec.cycle, "ratio": spec.ratio,
                 "samples": spec.size, "steps": self.plan.steps_in_epoch(spec.epoch, self.global_batch),
                 "global_step": self.progress["global_step"], "samples_seen": self.progress["samples_seen"],
                 "samples_scored": self.progress["samples_scored"], "wall_s": round(self._wall(), 3),
                 "time_s": self.timer.snapshot(), **{k: round(v, 6) for k, v in stats.items()},
                 **{k: round(v, 6) for k, v in val.items()}}
        self.progress["history"].append(entry)
        if self.dist.is_main:
            shown = f"val loss {val['val_loss']:.4f} | " if val else ""
            log.info("epoch %d/%d done | train loss %.4f | %s%d samples seen | %s elapsed", spec.epoch + 1,
                     len(self.plan.epochs), stats["train_loss"], shown, self.progress["samples_seen"],
                     _format_seconds(entry["wall_s"]))
            self.tracker.log({f"val/{k[4:]}": v for k, v in val.items()} | {"time/wall_s": entry["wall_s"]},
                             self.progress["global_step"])
            write_json_atomic(self.results(status="running"), self.run_dir / "results.json")

    def results(self, status: str) -> dict:
        cfg, p = self.cfg, self.progress
        last_val = next((h for h in reversed(p["history"]) if "val_loss" in h), {})
        times = self.timer.snapshot()
        wall = round(self._wall(), 3)
        times["other"] = round(max(wall - sum(times.values()), 0.0), 3)
        times["total"] = wall
        return {
            "status": status,
            "experiment": cfg.experiment_name,
            "run_dir": str(self.run_dir),
            "setting": {"ratio": cfg.ratio.schedule, "interval": cfg.interval.schedule,
                        "selection": cfg.selection.strategy, "temperature": cfg.selection.temperature,
                        "normalization": cfg.selection.normalization, "total_cycles": cfg.teaching.total_cycles,
                        "scoring_view": cfg.teaching.scoring_view, "score_source": cfg.teaching.score_source,
                        "model": cfg.model.name, "data": cfg.data.name, "seed": cfg.trainer.seed,
                        "world_size": self.dist.world_size, "device": str(self.device), "precision": self.precision},
            "initial": p.get("initial", {}),
            "final": {k: v for k, v in last_val.items() if k.startswith("val_")}
                     | {k: v for k, v in (p["history"][-1] if p["history"] else {}).items() if k.startswith("train_")},
            "epochs": len(self.plan.epochs),
            "epochs_completed": p["epoch"],
            "optimizer_steps": p["global_step"],
            "planned_optimizer_steps": self.total_steps,
            "samples_seen": p["samples_seen"],
            "samples_scored": p["samples_scored"],
            "scoring_passes": p["scoring_passes"],
            "num_train_samples": self.num_samples,
            "work_fraction_planned": round(self.plan.work_fraction, 6),
            "exit_code": p.get("exit_code", 0) if status == "interrupted" else 0,
            "bad_samples": p["bad_samples"],
            "skipped_at_scan": len(self.views["train"].folder.skipped),
            "bad_examples": p["bad_examples"],
            "time_s": times,
            "selections": self.teacher.history,
            "history": p["history"],
        }

    def finish(self, interrupted: bool) -> dict:
        if interrupted:
            status = "interrupted"
            self.progress["exit_code"] = self.stop.exit_code
            log.warning("stopped at epoch %d step %d; rerun the same command in this run folder to resume",
                        self.progress["epoch"], self.progress["step_in_epoch"])
        else:
            status = "completed"
            if self.dist.is_main:
                path = self.visualize("final")
                if path:
                    self.tracker.image("reconstructions", path, self.progress["global_step"])
                export = {"model": self.model.state_dict(), "config": OmegaConf.to_container(self.cfg.model, resolve=True)}
                atomic_torch_save(export, self.run_dir / "pretrained.pth")
        results = self.results(status)
        if self.dist.is_main:
            write_json_atomic(results, self.run_dir / "results.json")
            if status == "completed":
                f = results["final"]
                log.info("done: val loss %s, %d steps, %d samples seen, %d scored, %.1fs (train %.1fs, scoring %.1fs, "
                         "data wait %.1fs, eval %.1fs)", f"{f['val_loss']:.4f}" if "val_loss" in f else "n/a",
                         results["optimizer_steps"], results["samples_seen"], results["samples_scored"],
                         results["time_s"]["total"], results["time_s"]["train"], results["time_s"]["scoring"],
                         results["time_s"]["data_wait"], results["time_s"]["eval"])
        self.tracker.finish()
        return results


def _format_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def pretrain(cfg, run_dir: str | Path, dist: DistEnv | None = None) -> dict:
    """Run (or resume) pretraining into ``run_dir``; returns the results dict also written to results.json.

    With ``downstream.tasks`` set, the finished model is then fine-tuned on those tasks (``<run>/downstream/<task>``)
    and their best and final metrics are added to results.json, so that a Table-3 sweep yields complete rows."""
    trainer = Pretrainer(cfg, run_dir, dist)
    results = trainer.run()
    tasks = list(cfg.downstream.tasks)
    if results["status"] != "completed" or not tasks:
        return results
    from .downstream_suite import run_finetune_suite

    start = time.perf_counter()
    suite = run_finetune_suite(trainer.run_dir / "pretrained.pth", tasks, list(cfg.downstream.overrides),
                               trainer.run_dir / "downstream")
    keep = ("status", "main_metric", "best", "final", "baseline", "error", "run_dir")
    results["downstream"] = {task: {k: r[k] for k in keep if k in r} for task, r in suite.items()}
    results["time_s"]["downstream"] = round(time.perf_counter() - start, 3)
    if trainer.dist.is_main:
        write_json_atomic(results, trainer.run_dir / "results.json")
        for task, r in results["downstream"].items():
            metric = r.get("main_metric")
            value = (r.get("final") or {}).get(metric)
            log.info("downstream %s: %s", task, f"final {metric} {value:.4f}" if value is not None else r.get("status"))
    return results
