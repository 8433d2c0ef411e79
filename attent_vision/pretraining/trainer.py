"""The pretraining stage: MultiMAE on the teacher's plan, on top of the shared loop core (engine/loop.py).

What this stage adds to the core: the MultiMAE model, its per-sample per-task losses and the dataset views
(builders.py); the teacher, which decides each epoch's samples and scores them through a :class:`LearnerAccess`;
the validation reconstruction loss with fixed masks; reconstruction figures; and ``pretrained.pth``.
"""

import logging
from contextlib import contextmanager
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ..data.fingerprint import fingerprint_dataset
from ..data.skipping import BadSampleLog, collate_skipping_bad, nothing_loaded
from ..engine.bars import progress_bar
from ..engine.checkpoint import save_weights
from ..engine.distributed import DistEnv, all_reduce_sum, barrier, broadcast_object
from ..engine.loaders import to_device
from ..engine.loop import Trainer
from ..engine.optim import absolute_lr, build_optimizer, build_scheduler
from ..engine.runtime import autocast
from ..engine.sampler import StepShape
from ..errors import ConfigError
from ..teaching import Teacher
from .builders import MODALITIES, build_loss, build_pretrain_model, build_pretrain_views, dataset_root
from .learner import PretrainLearner
from .probing import PretrainingProbes
from .sample_record import FILE_NAME as SELECTIONS_FILE
from .sample_record import TrainCounts, write_selections
from .visualize import save_reconstructions
from .work import PretrainProgress, compute_details, describe_flops, measure_pretrain_flops

log = logging.getLogger(__name__)


class Pretrainer(PretrainingProbes, Trainer):
    """Pretrain (or resume) a MultiMAE into a run folder; ``run()`` returns the results.json dict."""

    stage = "pretrain"
    # What runs after training (the downstream suite, probes) or only at its start (initial weights)
    resume_may_differ = Trainer.resume_may_differ + ("downstream", "model.init_from", "probe")
    evaluate_at_start = True
    progress_type = PretrainProgress  # with the work counts of results.json's "compute" (work.py)
    metric_prefixes = ("val_", "probe_")  # validation reconstruction losses, representation probes (probing.py)

    def setup(self) -> None:
        cfg = self.cfg
        self.model = build_pretrain_model(cfg).to(self.device)
        self.loss_fn = build_loss(cfg, self.model)
        self.train_metric_names = list(self.loss_fn.tasks)
        # FLOPs per trained and per scored sample, for the compute axis; changes neither the model nor any RNG.
        self.sample_flops = measure_pretrain_flops(self.model, self.loss_fn, cfg, self.device, self.precision,
                                                   self.dist.world_size)
        root = dataset_root(cfg) if self.dist.is_main else None
        barrier(self.dist)  # rank 0 may have generated the synthetic data
        root = broadcast_object(root, self.dist) or dataset_root(cfg)
        self.views = build_pretrain_views(cfg, self.model, root)
        self.train_dataset = self.views["train"]
        self.learner = PretrainLearner(self)  # what the teacher scores samples through (learner.py)
        try:
            self.teacher = Teacher.from_settings(
                num_samples=len(self.train_dataset), epochs=cfg.trainer.epochs, ratio=cfg.ratio, interval=cfg.interval,
                selection=cfg.selection, teaching=cfg.teaching, seed=cfg.trainer.seed, device=self.device,
                learner=self.learner, tasks=self.train_metric_names, task_weights=self.loss_fn.weights)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.plan = self.teacher.plan
        self.train_counts = TrainCounts(len(self.train_dataset))  # selections.npz (sample_record.py)
        self.num_epochs = len(self.plan.epochs)
        val, max_val = self.views["val"], cfg.data.max_val_samples
        self.val_loader = None
        if val:
            count = len(val) if max_val is None else min(len(val), max_val)
            self.val_loader = self.learner.pass_loader(val, torch.arange(count))
        self.build_probes()

    def epoch_size(self, epoch: int) -> int:
        return self.plan.epochs[epoch].size

    def build_optimization(self):
        o = self.cfg.optim
        optimizer = build_optimizer(self.model, o, self.global_batch, self.device)
        warmup = self.plan.warmup_steps(o.warmup_epochs, self.global_batch)
        return optimizer, build_scheduler(optimizer, self.total_steps, warmup, o.min_lr)

    # ------------------------------------------------------------------------------------ model and losses
    def task_matrix(self, losses: dict, field: str = "per_sample") -> torch.Tensor:
        """B x T per-task losses (0 where a task has nothing to score, as in the objective), tasks in loss order;
        ``field="score"`` gives the selection scores (the losses, or their top-patch means: teaching.score_top_q)."""
        return torch.stack([getattr(losses[t], field) * losses[t].valid for t in self.train_metric_names], dim=1)

    @contextmanager
    def evaluation_mode(self):
        """The model in evaluation mode for the block (validation, figures, the learner's scoring passes)."""
        self.model.eval()
        try:
            yield
        finally:
            self.model.train()

    def forward(self, model, batch: dict):
        """Model and losses for one batch: returns (preds, masks, task losses, per-sample objective B)."""
        inputs = to_device(batch, self.device, MODALITIES)
        with autocast(self.precision, self.device):
            preds, masks = model(inputs, task_masks=batch["masks"])
        losses = self.loss_fn(preds, inputs, masks)
        return preds, masks, losses, self.loss_fn.objective(losses)

    # ------------------------------------------------------------------------------------------- core hooks
    def epoch_pool(self, epoch: int, resuming: bool) -> torch.Tensor | None:
        subset = self.teacher.subset_for_epoch(self.plan.epochs[epoch], self.progress.global_step, resuming)
        record = self.teacher.last_selection
        if record is not None:
            if self.dist.is_main:
                log.info(self.teacher.describe(record))
            step = self.progress.global_step
            self.tracker.log(record.tracker_metrics() | {"time/scoring_s": self.timer.totals["scoring"]}, step)
            scores = self.teacher.last_scores()
            if scores is not None and scores.numel():
                self.tracker.histogram("teach/scores", scores.numpy(), step)
        pool = self._planned_size(epoch, subset, record)
        if not resuming:  # a resumed epoch was counted before its checkpoint
            self.train_counts.add_epoch(pool)
        return pool

    def _planned_size(self, epoch: int, subset: torch.Tensor | None, record) -> torch.Tensor | None:
        """The subset, filled up to the plan's size by repeating its samples when too few loadable ones remain.

        Samples that failed to load (skip_bad_samples) are never selected, so with many of them the teacher finds
        fewer than the plan's subset size; the epoch would then run fewer optimizer steps than planned (and than
        the schedules and the full-data comparison assume). Repeating selected samples keeps the planned steps
        and samples; the selection's record in results.json counts the repeats (``repeated``)."""
        size = self.epoch_size(epoch)
        if subset is None or not 0 < subset.numel() < size:
            return subset
        if record is not None:
            record.repeated = size - subset.numel()
            if self.dist.is_main:
                log.warning("only %d loadable samples for a subset of %d (the others failed to load): the subset "
                            "repeats them (%d repeats), so the epoch keeps its %d planned steps", subset.numel(), size,
                            size - subset.numel(), self.steps_in_epoch(epoch))
        return subset[torch.arange(size) % subset.numel()]

    def step_loss(self, batch: dict, shape: StepShape) -> tuple[torch.Tensor, torch.Tensor]:
        _, _, losses, per_sample = self.forward(self.train_model, batch)
        weights = batch["weight"].to(self.device, torch.float32)
        # The subset's unbiased weights (selection.reweight=unbiased) scale each sample's share of the gradient;
        # the logged loss stays the plain mean, comparable across methods.
        selected = self.teacher.weights_for(batch["index"])
        gradient_weights = weights if selected is None else weights * selected.to(weights)
        # Normalised by the global sample count (x ranks, since DDP averages over ranks), so the gradient is the
        # full batch mean whatever the number of ranks and micro-batches.
        loss = (per_sample * gradient_weights).sum() * (self.dist.world_size / shape.global_count)
        per_task = self.task_matrix(losses)
        # The selection scores: the same losses unless a top-patch reduction gives them apart (teaching.score_top_q)
        scores = per_task if self.loss_fn.score_top_q is None else self.task_matrix(losses, "score")
        self.teacher.observe(batch["index"], scores, weights, self.progress.global_step)
        with torch.no_grad():
            row = torch.cat([torch.stack([weights.sum(), (per_sample * weights).sum()]),
                             (per_task * weights[:, None]).sum(dim=0)])
        return loss, row

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation reconstruction loss: mean per-sample objective and per-task means, fixed masks and view."""
        if self.val_loader is None:
            return {}
        tasks = self.train_metric_names
        sums = torch.zeros(2 + 2 * len(tasks), device=self.device, dtype=torch.float64)
        bad = BadSampleLog()
        with self.timer.phase("eval", sync=True), self.evaluation_mode():
            for batch in progress_bar(self.val_loader, desc="validation", show=self.show_bars):
                bad.update(batch)
                if "index" not in batch:
                    continue
                _, _, losses, per_sample = self.forward(self.model, batch)
                sums[0] += per_sample.sum()
                sums[1] += per_sample.numel()
                for i, task in enumerate(tasks):
                    sums[2 + 2 * i] += (losses[task].per_sample * losses[task].valid).sum()
                    sums[3 + 2 * i] += losses[task].valid.sum()
            all_reduce_sum(sums, self.dist)
        self.progress.eval_samples += int(sums[1])
        bad.report("validation")
        if not float(sums[1]):  # skip mode left out every validation sample: a loss of 0 would be made up
            raise nothing_loaded("validation sample", bad.count, bad.examples)
        out = {"val_loss": float(sums[0] / sums[1].clamp_min(1))}
        for i, task in enumerate(tasks):
            out[f"val_{task}"] = float(sums[2 + 2 * i] / sums[3 + 2 * i].clamp_min(1))
        return out

    @torch.no_grad()
    def visualize(self, name: str) -> Path | None:
        view = self.views["val"] or self.views["score"]
        if not self.dist.is_main or self.cfg.trainer.num_vis_samples <= 0:
            return None
        with self.timer.phase("eval"), self.evaluation_mode():
            batch = collate_skipping_bad([view[i] for i in range(min(self.cfg.trainer.num_vis_samples, len(view)))])
            if "index" not in batch:
                return None
            preds, masks, _, _ = self.forward(self.model, batch)
            inputs = to_device(batch, self.device, MODALITIES)
            return save_reconstructions(inputs, preds, masks, self.run_dir / "reconstructions" / f"{name}.png")

    def evaluate_initial(self) -> dict[str, float]:
        return self.evaluate() | (self.probe() if self.cfg.probe.at_start else {})

    def after_epoch(self, epoch: int, last: bool, metrics: dict) -> None:
        if self.probes_due(epoch, last):
            metrics.update(self.probe())  # recorded with the epoch (history, results.json final, tracker)
        every = self.cfg.trainer.vis_every_epochs
        if every and (epoch + 1) % every == 0 and not last:
            self.visualize(f"epoch_{epoch + 1:04d}")

    def epoch_label(self, epoch: int) -> str:
        spec = self.plan.epochs[epoch]
        return f"subset {spec.ratio:.2f}" if spec.is_subset else "full"

    def epoch_record(self, epoch: int) -> dict:
        spec = self.plan.epochs[epoch]
        return {"kind": spec.kind, "cycle": spec.cycle + 1 if spec.cycle >= 0 else None, "ratio": spec.ratio,
                "samples": spec.size, "steps": self.steps_in_epoch(epoch),
                "samples_scored": self.teacher.samples_scored}

    def extra_state(self) -> dict:
        return {"teacher": self.teacher.state_dict(), "train_counts": self.train_counts.counts.clone()}

    def data_fingerprint(self):
        return fingerprint_dataset(self.train_dataset.folder)  # the scanned sample list (data/fingerprint.py)

    def load_extra_state(self, state: dict) -> None:
        self.teacher.load_state_dict(state["teacher"])
        if state.get("train_counts") is not None:
            self.train_counts.counts = state["train_counts"].clone()
        else:  # a checkpoint from before the counts were kept: the epochs before it are not in them
            self.train_counts.complete = False

    def setting(self) -> dict:
        c = self.cfg
        return {"ratio": c.ratio.schedule, "interval": c.interval.schedule, "selection": c.selection.strategy,
                "temperature": c.selection.temperature, "normalization": c.selection.normalization,
                "total_cycles": c.teaching.total_cycles, "scoring_view": c.teaching.scoring_view,
                "score_source": self.teacher.score_source, "refresh_fraction": c.teaching.refresh_fraction,
                "score": c.teaching.score, "reweight": c.selection.reweight,
                "max_scoring_fraction": c.teaching.max_scoring_fraction, "model": c.model.name, "data": c.data.name}

    def result_details(self) -> dict:
        return self.teacher.result_details() | {
            "num_train_samples": self.num_train, "work_fraction_planned": round(self.plan.work_fraction, 6),
            "skipped_at_scan": len(self.train_dataset.folder.skipped), "sample_selection": self.train_counts.summary(),
            "compute": compute_details(self)}

    def save_outputs(self) -> None:
        path = self.visualize("final")
        if path:
            self.tracker.image("reconstructions", path, self.progress.global_step)
        save_weights(self.run_dir / "pretrained.pth", self.model, OmegaConf.to_container(self.cfg.model, resolve=True))
        self.tracker.add_final_outputs(self.run_dir / "pretrained.pth")  # logger.upload_artifacts

    def finish(self, interrupted: bool, diverged=None) -> dict:
        if self.dist.is_main:  # beside every final results.json: what was chosen and trained, whatever the status
            t = self.teacher
            write_selections(self.run_dir / SELECTIONS_FILE, self.train_counts, [r.to_dict() for r in t.history],
                             t.chosen, t.chosen_by, self.train_dataset.subset)
        return super().finish(interrupted, diverged)

    def describe(self) -> list[str]:
        c = self.cfg
        return [
            f"device {self.device}, precision {self.precision}, {self.dist.world_size} rank(s), global batch "
            f"{self.global_batch} (micro-batch {self.micro_batch}), lr "
            f"{absolute_lr(c.optim.blr, c.optim.lr, self.global_batch):.2e}",
            describe_flops(self.sample_flops),
            f"plan ({c.selection.strategy} selection, {c.ratio.schedule} ratio, {c.interval.schedule} interval, "
            f"{self.num_train} samples):\n{self.teacher.plan_table(self.global_batch)}",
        ] + (["free scores: refreshes score under the training augmentation and mask distribution, like the "
              "training steps they are ranked with (teaching.scoring_view applies to score_source=pass only)"]
             if self.teacher.free_scores else [])


def pretrain(cfg, run_dir: str | Path, dist: DistEnv | None = None) -> dict:
    """Run (or resume) pretraining into ``run_dir``; returns the results dict also written to results.json."""
    return Pretrainer(cfg, run_dir, dist).run()
