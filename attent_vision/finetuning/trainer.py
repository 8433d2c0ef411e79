"""The fine-tuning stage: a MultiViT with one task head, on top of the shared loop core (engine/loop.py).

What this stage adds to the core: the task's datasets (data.py), the model from ``init_from`` (model.py),
layer-wise lr decay, mixup/cutmix (timm, seeded per step), whole-set metrics summed over ranks with the trivial
baseline beside them (baselines.py), the best epoch by the task's main metric, and ``finetuned.pth``. What depends
on the kind of task (head, transforms, loss, metric, baseline, main metric) comes from its registered kind
(task_kinds/), bound to ``cfg.task`` as ``self.kind``. Batches are full (``drop_last``): the task losses are batch
means.
"""

import logging
import math
from pathlib import Path

import torch
from omegaconf import OmegaConf

from ..data.fingerprint import fingerprint_dataset
from ..data.skipping import BadSampleLog
from ..engine.bars import progress_bar
from ..engine.checkpoint import save_weights
from ..engine.console import format_metrics
from ..engine.distributed import DistEnv, all_reduce_sum
from ..engine.loaders import make_loader, to_device
from ..engine.loop import Trainer
from ..engine.optim import absolute_lr, build_scheduler
from ..engine.runtime import autocast
from ..engine.sampler import ShardedBatches, StepShape
from ..seeds import STREAM_MIXUP, derive_seed, seeded_global_rngs
from .data import build_finetune_datasets
from .model import build_finetune_model
from .progress import FinetuneProgress
from .task_kinds import TASK_KINDS

log = logging.getLogger(__name__)


class Finetuner(Trainer):
    """Fine-tune (or resume) into a run folder; ``run()`` returns the results.json dict."""

    stage = "finetune"
    progress_type = FinetuneProgress
    drop_last = True

    def setup(self) -> None:
        cfg, t = self.cfg, self.cfg.task
        self.kind = TASK_KINDS.get(t.kind)(t)
        self.main_metric = f"val_{self.kind.main_metric}"
        self.train_dataset, self.eval_set, self.num_classes = build_finetune_datasets(cfg, self.kind)
        self.model, self.init_record = build_finetune_model(cfg, self.num_classes, self.kind)
        self.model.to(self.device)
        self.num_epochs = cfg.trainer.epochs
        # Evaluation: each rank takes every ws-th sample, no padding or duplicates, so sums over ranks are exact.
        eval_batches = ShardedBatches(torch.arange(len(self.eval_set)), cfg.trainer.eval_batch_size,
                                      rank=self.dist.rank, world_size=self.dist.world_size)
        self.eval_loader = make_loader(self.eval_set, eval_batches, cfg.data, self.device, cfg.trainer.seed)
        self.mixup = self._mixup()
        self.loss_fn = self.kind.loss(mixup=self.mixup is not None)
        self.stats = self.kind.baseline_statistics(self.num_classes)

    def _mixup(self):
        mx = self.cfg.task.mixup
        if not self.kind.mixup or (mx.mixup_alpha <= 0 and mx.cutmix_alpha <= 0):
            return None
        from timm.data import Mixup

        return Mixup(mixup_alpha=mx.mixup_alpha, cutmix_alpha=mx.cutmix_alpha, prob=mx.prob,
                     switch_prob=mx.switch_prob, mode=mx.mode, label_smoothing=self.cfg.task.label_smoothing,
                     num_classes=self.num_classes)

    def build_optimization(self):
        """AdamW over timm's layer-decay groups: lr x decay^(distance from the head); no weight decay on biases,
        norms and the global token (the MultiMAE/BEiT fine-tuning recipe). Per-step warm-up from ``warmup_lr``,
        then cosine to ``min_lr``."""
        from timm.optim import param_groups_layer_decay

        o = self.cfg.optim
        groups = param_groups_layer_decay(self.model, weight_decay=o.weight_decay, layer_decay=o.layer_decay,
                                          no_weight_decay_list=list(self.model.no_weight_decay()))
        kwargs = dict(lr=self.base_lr(), betas=tuple(o.betas), eps=o.eps)
        if self.device.type == "cuda":
            kwargs["fused"] = True
        optimizer = torch.optim.AdamW(groups, **kwargs)
        warmup = int(round(o.warmup_epochs * self.steps_in_epoch(0))) if self.num_epochs else 0
        return optimizer, build_scheduler(optimizer, self.total_steps, warmup, o.min_lr, o.warmup_lr)

    def base_lr(self) -> float:
        return absolute_lr(self.cfg.optim.blr or 0.0, self.cfg.optim.lr, self.cfg.trainer.batch_size)

    # ------------------------------------------------------------------------------------------- core hooks
    def _output(self, model, batch: dict) -> torch.Tensor:
        with autocast(self.precision, self.device):
            out = model({d: batch[d] for d in self.cfg.task.in_domains})
        return out[self.kind.head]

    def step_loss(self, batch: dict, shape: StepShape) -> tuple[torch.Tensor, torch.Tensor]:
        batch = to_device(batch, self.device)
        if self.sampler.epoch == 0:  # the baseline learns its constant from the first epoch's targets
            self.stats.update(batch)
        target = batch["target"]
        if self.mixup is not None and len(target) % 2:  # skip mode left an odd batch, which Mixup cannot pair:
            from timm.data.mixup import mixup_target  # it trains unmixed, with the same (smoothed) soft targets

            target = mixup_target(target, self.num_classes, 1.0, self.cfg.task.label_smoothing)
        elif self.mixup is not None:  # timm's Mixup draws from NumPy's global RNG: seed it per step
            with seeded_global_rngs(derive_seed(self.cfg.trainer.seed, STREAM_MIXUP, self.progress.global_step)):
                batch["rgb"], target = self.mixup(batch["rgb"], target)
        # A non-finite loss is the loop's non-finite guard's business (engine/nonfinite.py): all ranks agree on it.
        loss = self.loss_fn(self._output(self.train_model, batch).float(), target, batch.get("valid"))
        count = loss.new_tensor(float(target.shape[0]))
        return loss, torch.stack([count, loss.detach() * count])

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Metrics over the whole evaluation set (and, on the first evaluation, the trivial baseline's on the same
        pixels, stored in ``progress.baseline``)."""
        kind, p = self.kind, self.progress
        self.model.eval()
        metric = kind.metric(self.num_classes)
        constant = None
        if not p.baseline:  # every rank's share of the first epoch's targets
            self.stats.sums = all_reduce_sum(self.stats.sums.to(self.device), self.dist).cpu()
            constant = self.stats.constant()
        baseline = kind.metric(self.num_classes) if constant is not None else None
        bad = BadSampleLog()
        with self.timer.phase("eval", sync=True):
            for batch in progress_bar(self.eval_loader, desc="evaluation", show=self.show_bars):
                bad.update(batch)  # skip mode: the metrics leave these out; the warning names their files
                if "target" not in batch:
                    continue
                batch = to_device(batch, self.device)
                output = self._output(self.model, batch).float()
                kind.update_metric(metric, output, batch)
                if baseline is not None:
                    kind.update_metric(baseline, self.stats.prediction(constant, output), batch)
            bad.report("evaluation")
            result = {f"val_{k}": v for k, v in reduce_metric(metric, self.dist).items()}
            if baseline is not None:
                p.baseline = {f"val_{k}": v for k, v in reduce_metric(baseline, self.dist).items()}
                p.baseline["constant"] = constant
                if self.dist.is_main:
                    log.info("trivial baseline (%s): %s", kind.baseline, format_metrics(p.baseline))
        self.model.train()
        return result

    def after_epoch(self, epoch: int, last: bool, metrics: dict) -> None:
        best = self.progress.best
        if metrics and (not best or _better(metrics[self.main_metric], best[self.main_metric], self.kind.maximize)):
            self.progress.best = dict(metrics, epoch=epoch + 1)

    def extra_state(self) -> dict:
        """The baseline's target statistics so far, summed over ranks (rank 0 keeps them on resume)."""
        sums = self.stats.sums
        if not self.progress.baseline:  # not yet summed over ranks by the first evaluation
            sums = all_reduce_sum(sums.to(self.device).clone(), self.dist).cpu()
        return {"train_stats": sums}

    def data_fingerprint(self):
        return fingerprint_dataset(self.train_dataset.dataset)  # the raw training split (data/fingerprint.py)

    def load_extra_state(self, state: dict) -> None:
        if self.dist.is_main:
            self.stats.sums = state["train_stats"].double()

    def setting(self) -> dict:
        c = self.cfg
        return {"task": c.task.name, "data": c.data.name, "image_size": c.model.image_size, "epochs": c.trainer.epochs,
                "batch_size": c.trainer.batch_size, "lr": self.base_lr(), "layer_decay": c.optim.layer_decay,
                "num_classes": self.num_classes, "in_domains": list(c.task.in_domains),
                "depth_protocol": c.task.depth_protocol if self.kind.uses_depth_protocol else None}

    def result_details(self) -> dict:
        p = self.progress
        return {"task": self.cfg.task.name, "kind": self.kind.name, "main_metric": self.main_metric,
                "init": self.init_record, "best": p.best, "baseline": p.baseline,
                "num_train_samples": self.num_train, "num_eval_samples": len(self.eval_set)}

    def save_outputs(self) -> None:
        save_weights(self.run_dir / "finetuned.pth", self.model, OmegaConf.to_container(self.cfg, resolve=True))
        self.tracker.add_final_outputs(self.run_dir / "finetuned.pth")  # logger.upload_artifacts

    def describe(self) -> list[str]:
        c, tr = self.cfg, self.cfg.trainer
        return [f"task {c.task.name} ({self.kind.name}) | model {self.init_record['model']}, "
                f"image {c.model.image_size}, patch {self.init_record['patch_size']} | "
                f"{tr.epochs} epochs x {self.steps_in_epoch(0)} steps, global batch {tr.batch_size}, "
                f"lr {self.base_lr():.2e} (layer decay {c.optim.layer_decay:.2f}) | "
                f"device {self.device}, precision {self.precision}"]


def reduce_metric(metric, dist: DistEnv) -> dict[str, float]:
    """Sum the accumulators over ranks, then compute (whole-set metrics, whatever the sharding)."""
    sums = metric.sums().to(dist.device)
    all_reduce_sum(sums, dist)
    metric.load_sums(sums.cpu())
    return metric.compute()


def _better(a: float, b: float, maximize: bool = True) -> bool:
    """Whether main metric ``a`` beats the best so far, ``b`` (NaN never wins; anything beats NaN)."""
    return not math.isnan(a) and (math.isnan(b) or (a > b if maximize else a < b))


def finetune(cfg, run_dir: str | Path, dist: DistEnv | None = None) -> dict:
    """Fine-tune (or resume) into ``run_dir``; returns the results dict also written to results.json."""
    return Finetuner(cfg, run_dir, dist).run()
