"""The fine-tuning loop: a MultiViT with one task head, trained with layer-wise lr decay, evaluated every epoch.

Reading order: ``Finetuner.__init__`` builds data, model (from ``init_from``), optimiser and schedule, and resumes
from this run folder's newest checkpoint; ``run`` trains and evaluates epoch by epoch; ``results`` is what
results.json holds (the best epoch by the task's main metric, the final epoch, the trivial baseline, history).
"""

import logging
import math
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from ..data.skipping import collate_skipping_bad
from ..errors import CheckpointError, ConfigError
from ..finetune_config import MAIN_METRIC
from ..models import create_model
from .checkpoint import CheckpointManager, atomic_torch_save, restore_rng, training_state
from .distributed import DistEnv, all_reduce_sum, barrier, init_distributed
from .finetune_data import build_finetune_datasets
from .finetune_eval import TrainStatistics, constant_prediction, make_metric, reduce_metric, update_metric
from .finetune_init import check_requested_model, infer_encoder_spec, load_init_weights, read_init_checkpoint
from .finetune_losses import TaskLoss
from .results import write_json_atomic
from .runtime import autocast, configure_backends, grad_scaler, resolve_precision
from .timers import PhaseTimer
from .tracking import Tracker

log = logging.getLogger(__name__)

# Settings that decide what a run computes: resuming with other values would silently mix two runs.
RESUME_MUST_MATCH = ("init_from", "task", "model", "data.name", "data.root", "data.synthetic", "optim",
                     "trainer.epochs", "trainer.batch_size", "trainer.seed")


def _select(container: dict, dotted: str):
    node = OmegaConf.select(OmegaConf.create(container), dotted)
    return OmegaConf.to_container(node) if OmegaConf.is_config(node) else node


def head_options(cfg, num_classes: int | None, patch_size: int) -> dict:
    """The ``heads`` argument of MultiViT for the task."""
    t, h = cfg.task, cfg.task.head
    if t.kind == "cls":
        return {"cls": dict(num_classes=num_classes, mean_pooling=h.mean_pooling, init_scale=h.init_scale)}
    if t.kind == "semseg":
        # Default: an H/4 x W/4 feature map, as the reference's 16 predictions per 16-pixel patch.
        ppp = h.preds_per_patch or max(1, (patch_size // 4) ** 2)
        return {"semseg": dict(num_classes=num_classes, embed_dim=h.embed_dim, preds_per_patch=ppp, depth=h.depth,
                               main_tasks=tuple(h.main_tasks))}
    return {"depth": dict(num_channels=1, hooks=list(h.hooks) if h.hooks else None,
                          layer_dims=list(h.layer_dims) if h.layer_dims else None, feature_dim=h.feature_dim,
                          main_tasks=tuple(h.main_tasks))}


def build_finetune_model(cfg, num_classes: int | None):
    """MultiViT + task head, initialised from ``cfg.init_from`` (or from scratch, with a warning).

    Returns (model, init record for results.json)."""
    m, t = cfg.model, cfg.task
    ckpt = read_init_checkpoint(cfg.init_from) if cfg.init_from else None
    if ckpt is not None:
        spec = infer_encoder_spec(ckpt)
        check_requested_model(spec, m.name, m.patch_size, ckpt.path)
        name, kwargs = spec.name, spec.create_kwargs()
    else:
        log.warning("init_from is not set: training from scratch (random initialisation). Downstream numbers of a "
                    "scratch model are a lower bound, not a pretraining result; set init_from=<checkpoint> to "
                    "fine-tune a pretrained encoder")
        name = m.name or m.scratch_name
        kwargs = dict(patch_size=m.patch_size or m.scratch_patch_size)
    patch = kwargs["patch_size"]
    if m.image_size % patch:
        raise CheckpointError(f"model.image_size={m.image_size} is not a multiple of the checkpoint's patch size "
                              f"{patch}; choose an image size divisible by {patch}")
    model = create_model(name, in_domains=list(t.in_domains), image_size=m.image_size,
                         drop_path_rate=m.drop_path_rate, heads=head_options(cfg, num_classes, patch), **kwargs)
    record = {"init_from": str(ckpt.path) if ckpt else None, "model": name, "patch_size": patch}
    if ckpt is not None:
        report, decoders = load_init_weights(model, ckpt)
        missing_encoder = [k for k in report.missing if not k.startswith("output_adapters.")]
        log.info("initialised from %s: %s; %d pretraining-decoder keys dropped%s", ckpt.path, report.summary(),
                 len(decoders), " (converted from the timm layout)" if ckpt.converted_from_timm else "")
        if missing_encoder:
            log.warning("the checkpoint lacks %d encoder/adapter weights, trained from scratch: %s",
                        len(missing_encoder), ", ".join(missing_encoder[:6]))
        missing_head = [k for k in report.missing if k.startswith("output_adapters.")]
        if cfg.trainer.epochs == 0 and missing_head:
            raise CheckpointError(
                f"trainer.epochs=0 evaluates init_from as it is, but {ckpt.path} holds no trained '{t.kind}' head "
                f"(missing {missing_head[0]}, ...); give a fine-tuned checkpoint (<run>/finetuned.pth) or train "
                "with trainer.epochs >= 1"
            )
        record.update(missing=report.missing, unexpected=report.unexpected, resized=report.resized,
                      dropped_decoder_keys=len(decoders), converted_from_timm=ckpt.converted_from_timm)
    return model, record


class Finetuner:
    def __init__(self, cfg, run_dir: str | Path, dist: DistEnv | None = None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.dist = dist or init_distributed(cfg.trainer.device)
        self.device = self.dist.device
        configure_backends(self.device)
        t, tr = cfg.task, cfg.trainer
        self.kind = t.kind
        self.main_metric = MAIN_METRIC[self.kind]
        self.precision = resolve_precision(tr.precision, self.device)
        self.wall_start = time.perf_counter()

        self.train_set, self.eval_set, self.num_classes = build_finetune_datasets(cfg)
        torch.manual_seed(tr.seed)  # identical head initialisation on every rank
        self.model, self.init_record = build_finetune_model(cfg, self.num_classes)
        self.model.to(self.device)

        ws = self.dist.world_size
        if tr.batch_size % ws:
            raise ConfigError(f"trainer.batch_size={tr.batch_size} (global) must be divisible by the {ws} ranks")
        self.local_batch = tr.batch_size // ws
        self.train_sampler = DistributedSampler(self.train_set, num_replicas=ws, rank=self.dist.rank, shuffle=True,
                                                seed=tr.seed, drop_last=True)
        self.train_loader = self._loader(self.train_set, batch_size=self.local_batch, sampler=self.train_sampler,
                                         drop_last=True)
        # Evaluation: each rank takes every ws-th sample, no padding or duplicates, so sums over ranks are exact.
        eval_indices = list(range(self.dist.rank, len(self.eval_set), ws))
        self.eval_loader = self._loader(torch.utils.data.Subset(self.eval_set, eval_indices),
                                        batch_size=tr.eval_batch_size, sampler=None, drop_last=False)
        self.steps_per_epoch = len(self.train_loader)
        if tr.epochs and self.steps_per_epoch == 0:
            raise ConfigError(f"trainer.batch_size={tr.batch_size} exceeds the {len(self.train_set)} training "
                                  "samples (batches are full, the remainder is dropped); lower trainer.batch_size")
        self.total_steps = tr.epochs * self.steps_per_epoch

        self.mixup = self._mixup()
        self.loss_fn = TaskLoss(self.kind, t.loss, t.label_smoothing, mixup=self.mixup is not None)
        self.optimizer = self._optimizer()
        self.scheduler = self._scheduler()
        self.scaler = grad_scaler(self.precision, self.device)
        self.ddp_model = self.model
        if self.dist.distributed:
            self.ddp_model = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if tr.compile:
            self.ddp_model = torch.compile(self.ddp_model)

        self.ckpt = CheckpointManager(self.run_dir / "checkpoints", cfg.checkpoint.keep_last)
        self.progress = dict(epoch=0, global_step=0, samples_seen=0, wall_s=0.0, history=[], best=None,
                             baseline=None, baseline_constant=None, train_stats=None)
        self.stats = TrainStatistics(self.kind, self.num_classes)
        self.timer = PhaseTimer(self.device)
        self._resume()
        if self.dist.is_main:
            OmegaConf.save(cfg, self.run_dir / "config.yaml", resolve=True)
        self.tracker = Tracker(cfg.logger, self.run_dir, OmegaConf.to_container(cfg, resolve=True), self.dist.is_main)

    # ------------------------------------------------------------------------------------------------ set-up
    def _loader(self, dataset, batch_size, sampler, drop_last) -> DataLoader:
        d = self.cfg.data
        workers = d.num_workers
        return DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, shuffle=False, drop_last=drop_last,
            num_workers=workers, collate_fn=collate_skipping_bad,
            pin_memory=d.pin_memory and self.device.type == "cuda",
            persistent_workers=d.persistent_workers and workers > 0,
            prefetch_factor=d.prefetch_factor if workers > 0 else None,
            generator=torch.Generator().manual_seed(self.cfg.trainer.seed),
        )

    def _mixup(self):
        mx = self.cfg.task.mixup
        if self.kind != "cls" or (mx.mixup_alpha <= 0 and mx.cutmix_alpha <= 0):
            return None
        from timm.data import Mixup

        return Mixup(mixup_alpha=mx.mixup_alpha, cutmix_alpha=mx.cutmix_alpha, prob=mx.prob,
                     switch_prob=mx.switch_prob, mode=mx.mode, label_smoothing=self.cfg.task.label_smoothing,
                     num_classes=self.num_classes)

    def base_lr(self) -> float:
        o = self.cfg.optim
        return float(o.lr) if o.lr is not None else o.blr * self.cfg.trainer.batch_size / 256

    def _optimizer(self) -> torch.optim.Optimizer:
        """AdamW over timm's layer-decay groups: lr x decay^(distance from the head); no weight decay on biases,
        norms and the global token (the MultiMAE/BEiT fine-tuning recipe)."""
        from timm.optim import param_groups_layer_decay

        o = self.cfg.optim
        groups = param_groups_layer_decay(self.model, weight_decay=o.weight_decay, layer_decay=o.layer_decay,
                                          no_weight_decay_list=list(self.model.no_weight_decay()))
        kwargs = dict(lr=self.base_lr(), betas=tuple(o.betas), eps=o.eps)
        if self.device.type == "cuda":
            kwargs["fused"] = True
        return torch.optim.AdamW(groups, **kwargs)

    def _scheduler(self):
        """Per-step linear warm-up from ``warmup_lr``, then cosine to ``min_lr`` at the last step (timm; it applies
        each group's ``lr_scale``)."""
        from timm.scheduler import CosineLRScheduler

        o = self.cfg.optim
        warmup = min(int(round(o.warmup_epochs * self.steps_per_epoch)), max(self.total_steps - 1, 0))
        return CosineLRScheduler(self.optimizer, t_initial=max(self.total_steps - warmup, 1), lr_min=o.min_lr,
                                 warmup_t=warmup, warmup_lr_init=o.warmup_lr, warmup_prefix=True, t_in_epochs=False)

    def _resume(self):
        resume = self.cfg.checkpoint.resume
        if resume == "never":
            return
        path = self.ckpt.latest() if resume == "auto" else Path(resume)
        if path is None:
            return
        state = self.ckpt.load(path)
        saved, current = state.get("config", {}), OmegaConf.to_container(self.cfg, resolve=True)
        diffs = [f"{k}: {_select(saved, k)!r} -> {_select(current, k)!r}" for k in RESUME_MUST_MATCH
                 if _select(saved, k) != _select(current, k)]
        if diffs:
            raise CheckpointError(f"{path} was written by a fine-tuning run with different settings "
                                  f"({'; '.join(diffs[:3])}); use the original settings, a new run folder, or "
                                  "checkpoint.resume=never")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.progress.update(state["progress"])
        if self.progress.get("train_stats") is not None:
            self.stats.sums = torch.tensor(self.progress["train_stats"], dtype=torch.float64)
        self.timer = PhaseTimer(self.device, state["progress"].get("timers"))
        restore_rng(state, self.device)
        log.info("resumed from %s after epoch %d", path, self.progress["epoch"])

    def _save(self):
        with self.timer.phase("checkpoint"):
            if self.dist.is_main:
                self.progress["train_stats"] = self.stats.sums.tolist()
                state = training_state(model=self.model, optimizer=self.optimizer, scaler=self.scaler,
                                       progress=dict(self.progress, timers=self.timer.snapshot(), wall_s=self._wall()),
                                       cfg=self.cfg, device=self.device)
                self.ckpt.save(state, self.progress["global_step"])
            barrier(self.dist)

    def _wall(self) -> float:
        return self.progress["wall_s"] + time.perf_counter() - self.wall_start

    # ----------------------------------------------------------------------------------------------- steps
    def _to_device(self, batch: dict) -> dict:
        nb = self.device.type == "cuda"
        return {k: v.to(self.device, non_blocking=nb) for k, v in batch.items() if isinstance(v, torch.Tensor)}

    def _inputs(self, batch: dict) -> dict:
        return {d: batch[d] for d in self.cfg.task.in_domains}

    def _output(self, model, batch: dict) -> torch.Tensor:
        with autocast(self.precision, self.device):
            out = model(self._inputs(batch))
        return out[self.kind]

    def train_epoch(self, epoch: int) -> dict:
        cfg, tr = self.cfg, self.cfg.trainer
        self.model.train()
        self.train_sampler.set_epoch(epoch)
        loss_sum = torch.zeros(2, dtype=torch.float64, device=self.device)
        bad = 0
        bar = tqdm(total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{tr.epochs}", leave=False,
                   disable=not (tr.progress_bar and self.dist.is_main))
        it = iter(self.train_loader)
        for step in range(self.steps_per_epoch):
            wait = time.perf_counter()
            batch = next(it)
            self.timer.add("data_wait", time.perf_counter() - wait)
            bad += len(batch.get("bad", []))
            if "target" not in batch:
                continue
            batch = self._to_device(batch)
            if epoch == 0:
                self.stats.update(batch)
            target = batch["target"]
            if self.mixup is not None:
                batch["rgb"], target = self.mixup(batch["rgb"], target)
            output = self._output(self.ddp_model, batch)
            loss = self.loss_fn(output, target, batch.get("valid"))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch} step {step}; lower optim.lr/blr or "
                                         "set optim.clip_grad")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg.optim.clip_grad:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.clip_grad)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.progress["global_step"] += 1
            self.progress["samples_seen"] += target.shape[0] * self.dist.world_size
            self.scheduler.step_update(self.progress["global_step"])
            loss_sum += torch.stack([loss.detach().double(), torch.ones((), dtype=torch.float64, device=self.device)])
            bar.update(1)
            if self.progress["global_step"] % tr.log_every_steps == 0:
                lr = max(g["lr"] for g in self.optimizer.param_groups)
                mean = float(loss_sum[0] / loss_sum[1].clamp_min(1))
                bar.set_postfix_str(f"loss {mean:.4f}")
                self.tracker.log({"train/loss": loss.item(), "train/lr": lr, "train/epoch": epoch},
                                 self.progress["global_step"])
        bar.close()
        if bad:
            log.warning("epoch %d: skipped %d samples that failed to load", epoch + 1, bad)
        all_reduce_sum(loss_sum, self.dist)
        if epoch == 0:  # the baseline's statistics come from every rank's share of the first epoch
            stats = self.stats.sums.to(self.device)
            all_reduce_sum(stats, self.dist)
            self.stats.sums = stats.cpu()
        return {"train_loss": float(loss_sum[0] / loss_sum[1].clamp_min(1))}

    @torch.no_grad()
    def evaluate(self, with_baseline: bool = False) -> tuple[dict, dict | None]:
        """Metrics over the whole evaluation set (and, once, the trivial baseline's on the same pixels)."""
        t = self.cfg.task
        self.model.eval()
        metric = make_metric(self.kind, self.num_classes, t.depth_protocol)
        constant = self.stats.constant() if with_baseline else None
        baseline = make_metric(self.kind, self.num_classes, t.depth_protocol) if constant is not None else None
        with self.timer.phase("eval", sync=True):
            for batch in self.eval_loader:
                if "target" not in batch:
                    continue
                batch = self._to_device(batch)
                output = self._output(self.model, batch).float()
                update_metric(metric, self.kind, output, batch)
                if baseline is not None:
                    pred = constant_prediction(self.kind, constant, output, self.num_classes)
                    update_metric(baseline, self.kind, pred, batch)
            result = reduce_metric(metric, self.dist)
            base = reduce_metric(baseline, self.dist) if baseline is not None else None
        self.model.train()
        if base is not None:
            base["constant"] = constant
        return result, base

    # -------------------------------------------------------------------------------------------------- run
    def run(self) -> dict:
        cfg, tr = self.cfg, self.cfg.trainer
        if self.dist.is_main:
            log.info("run folder: %s", self.run_dir)
            log.info("task %s (%s) | model %s, image %d, patch %d | %d epochs x %d steps, global batch %d, lr %.2e "
                     "(layer decay %.2f) | device %s, precision %s", cfg.task.name, self.kind,
                     self.init_record["model"], cfg.model.image_size, self.init_record["patch_size"], tr.epochs,
                     self.steps_per_epoch, tr.batch_size, self.base_lr(), cfg.optim.layer_decay, self.device,
                     self.precision)
        if tr.epochs == 0:
            metrics, _ = self.evaluate()
            self._record(-1, {}, metrics)
        for epoch in range(self.progress["epoch"], tr.epochs):
            with self.timer.phase("train", sync=True):
                wait_before = self.timer.totals["data_wait"]
                stats = self.train_epoch(epoch)
            self.timer.totals["train"] -= self.timer.totals["data_wait"] - wait_before
            last = epoch == tr.epochs - 1
            due = tr.eval_every_epochs and (epoch + 1) % tr.eval_every_epochs == 0
            metrics, baseline = self.evaluate(with_baseline=self.progress["baseline"] is None) if (last or due) else ({}, None)
            if baseline is not None:
                self.progress["baseline"] = baseline
                log.info("trivial baseline (%s): %s", _baseline_name(self.kind), _fmt(baseline))
            self.progress["epoch"] = epoch + 1
            self._record(epoch, stats, metrics)
            every = cfg.checkpoint.every_epochs
            if last or (every and (epoch + 1) % every == 0):
                self._save()
        return self.finish()

    def _record(self, epoch: int, stats: dict, metrics: dict) -> None:
        entry = {"epoch": epoch + 1, "global_step": self.progress["global_step"],
                 "samples_seen": self.progress["samples_seen"], "wall_s": round(self._wall(), 3),
                 **{k: round(v, 6) for k, v in stats.items()}, **{k: round(v, 6) for k, v in metrics.items()}}
        self.progress["history"].append(entry)
        if metrics:
            best = self.progress["best"]
            if best is None or _better(metrics[self.main_metric], best[self.main_metric]):
                self.progress["best"] = dict(metrics, epoch=epoch + 1)
        if self.dist.is_main:
            log.info("epoch %d/%d | %s%s", epoch + 1, self.cfg.trainer.epochs,
                     f"train loss {stats['train_loss']:.4f} | " if stats else "", _fmt(metrics) if metrics else "no eval")
            self.tracker.log({f"eval/{k}": v for k, v in metrics.items()}
                             | {f"train/{k}": v for k, v in stats.items()} | {"time/wall_s": entry["wall_s"]},
                             self.progress["global_step"])
            write_json_atomic(self.results("running"), self.run_dir / "results.json")

    def results(self, status: str) -> dict:
        cfg, p = self.cfg, self.progress
        final = next((h for h in reversed(p["history"]) if self.main_metric in h), {})
        times = {k: v for k, v in self.timer.snapshot().items() if k != "scoring"}  # no scoring in fine-tuning
        times["total"] = round(self._wall(), 3)
        return {
            "status": status,
            "task": cfg.task.name,
            "kind": self.kind,
            "main_metric": self.main_metric,
            "experiment": cfg.experiment_name,
            "run_dir": str(self.run_dir),
            "init": self.init_record,
            "setting": {"data": cfg.data.name, "image_size": cfg.model.image_size, "epochs": cfg.trainer.epochs,
                        "batch_size": cfg.trainer.batch_size, "lr": self.base_lr(),
                        "layer_decay": cfg.optim.layer_decay, "num_classes": self.num_classes,
                        "in_domains": list(cfg.task.in_domains), "seed": cfg.trainer.seed,
                        "depth_protocol": cfg.task.depth_protocol if self.kind == "depth" else None,
                        "world_size": self.dist.world_size, "device": str(self.device), "precision": self.precision},
            "best": p["best"] or {},
            "final": {k: v for k, v in final.items() if k not in ("global_step", "samples_seen", "wall_s")},
            "baseline": p["baseline"] or {},
            "epochs_completed": p["epoch"],
            "optimizer_steps": p["global_step"],
            "samples_seen": p["samples_seen"],
            "num_train_samples": len(self.train_set),
            "num_eval_samples": len(self.eval_set),
            "time_s": times,
            "history": p["history"],
        }

    def finish(self) -> dict:
        results = self.results("completed")
        if self.dist.is_main:
            atomic_torch_save({"model": self.model.state_dict(), "config": OmegaConf.to_container(self.cfg, resolve=True)},
                              self.run_dir / "finetuned.pth")
            write_json_atomic(results, self.run_dir / "results.json")
            b, f = results["best"], results["final"]
            log.info("done: best %s %.4f (epoch %s), final %s %.4f, baseline %s, %.1fs", self.main_metric,
                     b.get(self.main_metric, float("nan")), b.get("epoch"), self.main_metric,
                     f.get(self.main_metric, float("nan")),
                     _fmt(results["baseline"]) if results["baseline"] else "n/a", results["time_s"]["total"])
        self.tracker.finish()
        return results


def _better(a: float, b: float) -> bool:
    return not math.isnan(a) and (math.isnan(b) or a > b)


def _baseline_name(kind: str) -> str:
    return "constant depth" if kind == "depth" else "majority class"


def _fmt(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())


def finetune(cfg, run_dir: str | Path, dist: DistEnv | None = None) -> dict:
    """Fine-tune (or resume) into ``run_dir``; returns the results dict also written to results.json."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return Finetuner(cfg, run_dir, dist).run()
