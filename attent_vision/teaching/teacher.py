"""The teacher: owns every selection round of a run, behind one small interface.

The training stage asks ``subset_for_epoch(spec, step)`` before every planned epoch and gets ``None`` (full data)
or the subset to train on, and passes each training step's per-sample losses to ``observe``. Everything in
between is the teacher's: whether the plan selects before this epoch, whether the strategy needs fresh scores,
the scoring pass (through the :class:`LearnerAccess` the stage hands it, the only thing it knows about the
learner), the selection, its timing and its record in ``history``. Selections are drawn from generators seeded by
(seed, epoch), so every rank computes the same subset from the same gathered scores, and a resumed run repeats
them exactly. Nothing here imports the engine: the stage adapts the learner to :class:`LearnerAccess`.
"""

import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterable

import torch

from ..seeds import STREAM_SELECT, generator
from .plan import FULL, EpochPlan, EpochSpec, build_plan
from .score_table import ScoreTable
from .scoring_pass import run_scoring_pass
from .selection import build_strategy
from .settings import IntervalConfig, RatioConfig, SelectionConfig, TeachingConfig
from .strategies import SelectionStrategy


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@dataclass
class LearnerAccess:
    """What the teacher may ask of the learner; supplied by the training stage."""

    score_batches: Callable[[torch.Tensor, int], Iterable[dict]]  # (indices, epoch) -> this rank's batches of them
    per_sample_loss: Callable[[dict], torch.Tensor]  # batch -> B per-sample objective (called under no_grad)
    gather: Callable[[torch.Tensor], torch.Tensor] = _identity  # concatenate a 1-D tensor across ranks, rank order
    inference: Callable[[], ContextManager] = nullcontext  # around each pass: evaluation mode (and the stage's timer)
    synchronize: Callable[[], None] = lambda: None  # wait for the device (honest timing)


class Teacher:
    """Args:
        plan: the epoch plan (which epochs are subset epochs, their sizes, when to reselect).
        strategy: the selection strategy (``none`` for full data).
        seed: run seed; selections use generators derived from (seed, epoch).
        score_source: ``pass`` (score every sample with a no-grad pass before selecting) or ``training``
            (select on the losses recorded during training steps: no extra pass, but older and noisier scores).
        access: how to score samples and gather across ranks (needed when selections need scores).
    """

    def __init__(self, plan: EpochPlan, strategy: SelectionStrategy, *, seed: int, score_source: str = "pass",
                 device: torch.device | str = "cpu", access: LearnerAccess | None = None):
        self.plan = plan
        self.strategy = strategy
        self.seed = seed
        self.score_source = score_source
        self.device = device
        self.access = access
        self.table = ScoreTable(plan.num_samples, device)
        self.subset: torch.Tensor | None = None
        self.history: list[dict] = []
        self.samples_scored = 0
        self.scoring_passes = 0
        self.last_selection: dict | None = None  # the record of a selection made by the latest call, else None

    @classmethod
    def from_settings(cls, *, num_samples: int, epochs: int, ratio: RatioConfig, interval: IntervalConfig,
                      selection: SelectionConfig, teaching: TeachingConfig, seed: int,
                      device: torch.device | str = "cpu", access: LearnerAccess | None = None) -> "Teacher":
        """The teacher of the ``ratio``, ``interval``, ``selection`` and ``teaching`` config groups."""
        plan = build_plan(
            num_samples=num_samples, epochs=epochs, strategy=selection.strategy, total_cycles=teaching.total_cycles,
            ratio=ratio.schedule, initial_ratio=ratio.initial_ratio, final_ratio=ratio.final_ratio,
            interval=interval.schedule, initial_interval=interval.initial_interval,
            max_interval=interval.max_interval, reselect_every_subset_epoch=selection.reselect_every_subset_epoch,
        )
        strategy = build_strategy(selection.strategy, selection.temperature, selection.normalization)
        return cls(plan, strategy, seed=seed, score_source=teaching.score_source, device=device, access=access)

    @property
    def needs_scoring_pass(self) -> bool:
        return self.strategy.needs_scores and self.score_source == "pass"

    def plan_table(self, batch_size: int) -> str:
        return self.plan.table(batch_size, self.needs_scoring_pass)

    def subset_for_epoch(self, spec: EpochSpec, step: int, resuming: bool = False) -> torch.Tensor | None:
        """The samples to train on in ``spec.epoch`` (None = all), selecting first when the plan says so. When
        ``resuming`` an epoch mid-way, its selection was already made: the current subset is returned."""
        self.last_selection = None
        if spec.kind == FULL:
            return None
        if spec.select and not resuming:
            self._select(spec, step)
        if self.subset is None:
            raise RuntimeError(f"epoch {spec.epoch + 1} is a subset epoch but no selection was made before it")
        return self.subset

    def _select(self, spec: EpochSpec, step: int) -> None:
        scored, seconds = 0, 0.0
        if self.strategy.needs_scores:
            if self.needs_scoring_pass:
                start = time.perf_counter()
                scored = self.score(torch.arange(self.plan.num_samples), spec.epoch, step)
                seconds = time.perf_counter() - start
            else:
                self.merge_rank_tables()
        scores = self.table.for_selection() if self.strategy.needs_scores else torch.zeros(self.plan.num_samples)
        # Samples that failed to load (skip_bad_samples) are never selected: they would fail again.
        eligible = (~self.table.failed()).nonzero().squeeze(1)
        if eligible.numel() == 0:
            raise RuntimeError("every training sample failed to load in the scoring pass")
        g = generator(self.seed, STREAM_SELECT, spec.epoch)
        chosen = self.strategy.select(scores[eligible], min(spec.size, eligible.numel()), g)
        self.subset = eligible[chosen].sort().values
        record = {"epoch": spec.epoch + 1, "cycle": spec.cycle + 1, "ratio": spec.ratio, "size": spec.size,
                  "interval": spec.interval, "step": step, "samples_scored": scored, "scoring_s": round(seconds, 3)}
        if scored and seconds > 0:
            record["scoring_samples_per_s"] = round(scored / seconds, 1)
        if self.strategy.needs_scores:
            record["scores"] = self.table.stats()
            record["selected_score_mean"] = float(scores[self.subset].mean())
        self.history.append(record)
        self.last_selection = record

    def score(self, indices: torch.Tensor, epoch: int, step: int) -> int:
        """Refresh the scores of ``indices`` with a scoring pass (sharded across ranks by the learner's batches),
        as seen at optimizer ``step``; returns the number of samples scored."""
        if self.access is None:
            raise RuntimeError("this teacher has no LearnerAccess, so it cannot run a scoring pass")
        a = self.access
        with a.inference():
            idx, values = run_scoring_pass(a.score_batches(indices, epoch), a.per_sample_loss, indices, a.gather,
                                           self.device)
            a.synchronize()
        self.table.record(idx, values, step)
        self.samples_scored += indices.numel()
        self.scoring_passes += 1
        return indices.numel()

    def merge_rank_tables(self) -> None:
        """With training-step scores under DDP each rank records only its own shard's losses: merge the ranks'
        tables (each sample's newest value wins), so every rank, and a checkpoint, holds them all. Idempotent."""
        if self.strategy.needs_scores and not self.needs_scoring_pass and self.access is not None:
            self.table.merge(self.access.gather)

    def observe(self, indices: torch.Tensor, per_sample: torch.Tensor, weights: torch.Tensor, step: int) -> None:
        """Record a training step's per-sample objective (B) for samples ``indices`` (B); weight-0 padding is
        ignored."""
        self.table.record(indices, per_sample.detach(), step, keep=weights > 0)

    def describe(self, record: dict) -> str:
        """A log line for a selection record."""
        stats = record.get("scores", {})
        detail = (f"scores mean {stats['mean']:.4f} std {stats['std']:.4f} (p10 {stats['p10']:.4f}, p90 "
                  f"{stats['p90']:.4f}); selected mean {record['selected_score_mean']:.4f}"
                  if stats.get("scored") else "no scores needed")
        scored = f" after scoring {record['samples_scored']} samples" if record["samples_scored"] else ""
        return (f"cycle {record['cycle']} epoch {record['epoch']}: selected {record['size']}/{self.plan.num_samples} "
                f"samples (ratio {record['ratio']:.3f}, interval {record['interval']}){scored}; {detail}")

    def finite_scores(self) -> torch.Tensor:
        """The current scores of samples that have one (CPU), e.g. for a histogram."""
        values = self.table.values.detach().float().cpu()
        return values[torch.isfinite(values)]

    def state_dict(self) -> dict:
        return {
            "table": self.table.state_dict(),
            "subset": None if self.subset is None else self.subset.clone(),
            "history": list(self.history),
            "samples_scored": self.samples_scored,
            "scoring_passes": self.scoring_passes,
        }

    def load_state_dict(self, state: dict) -> None:
        self.table.load_state_dict(state["table"])
        self.subset = state["subset"]
        self.history = list(state["history"])
        self.samples_scored = state.get("samples_scored", 0)
        self.scoring_passes = state.get("scoring_passes", 0)
