"""The teacher: owns every selection round of a run, behind one small interface.

The training stage asks ``subset_for_epoch(spec, step)`` before every planned epoch and gets ``None`` (full data)
or the subset to train on, and passes each training step's per-sample losses to ``observe``. Everything in
between is the teacher's: whether the plan selects before this epoch, whether the strategy needs fresh scores,
what a score is (scores/: loss, learnability, progress, per-modality weights), the subset's weights (``weights_for``;
``selection.reweight=unbiased``), the scoring pass (through the :class:`LearnerAccess` the stage hands it, the only thing it knows about the
learner), the selection, its timing and its record in ``history``. Selections are drawn from generators seeded by
(seed, epoch), so every rank computes the same subset from the same gathered scores, and a resumed run repeats
them exactly. Nothing here imports the engine: the stage adapts the learner to :class:`LearnerAccess`.
"""

import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterable

import torch

from ..errors import DataError
from ..seeds import STREAM_REFRESH, STREAM_SELECT, generator
from .plan import FULL, EpochPlan, EpochSpec, build_plan
from .narration import plan_text, selection_line
from .refresh import refresh_count, score_ages, stalest
from .score_table import ScoreTable, for_selection, score_histogram, score_stats
from .scores import ScoreFunction, ScoreInputs, build_score, combine
from .scoring_budget import ScoringBudget
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
    per_task_losses: Callable[[dict], torch.Tensor]  # batch -> B x T per-sample per-task losses (under no_grad)
    gather: Callable[[torch.Tensor], torch.Tensor] = _identity  # concatenate a 1-D tensor across ranks, rank order
    inference: Callable[[], ContextManager] = nullcontext  # around each pass: evaluation mode (and the stage's timer)
    synchronize: Callable[[], None] = lambda: None  # wait for the device (honest timing)
    # (seconds spent training, waiting for data and scoring so far, samples trained so far), for the scoring cap
    work_so_far: Callable[[], tuple[float, int]] = lambda: (0.0, 0)
    # learnability: train a reference model on holdout data, return its per-task losses (N x T) on the given
    # training samples (identical on every rank); None when the stage cannot train one
    reference_losses: Callable[[torch.Tensor], torch.Tensor] | None = None


class Teacher:
    """Args:
        plan: the epoch plan (which epochs are subset epochs, their sizes, when to reselect).
        strategy: the selection strategy (``none`` for full data).
        seed: run seed; selections use generators derived from (seed, epoch).
        score_source: ``pass`` (the paper: score every sample with a no-grad pass before selecting) or
            ``training`` (free scores: the losses recorded during training steps, plus a budgeted refresh of the
            stalest ``refresh_fraction`` of the samples before each selection; see refresh.py).
        budget: the cost cap on refresh passes (scoring_budget.py); ``pass`` scoring is never capped.
        access: how to score samples and gather across ranks (needed when selections need scores).
        score: what a score is (scores/), from per-task losses; task_weights (T): the objective's weights, which
            combine the tasks when ``modality_weights`` (T) is None; with it, each task is normalised by its mean.
        reweight: ``none`` or ``unbiased`` (train on the subset with weights k / (N pi_i); not with hard).
    """

    def __init__(self, plan: EpochPlan, strategy: SelectionStrategy, *, seed: int, score_source: str = "pass",
                 refresh_fraction: float = 0.1, budget: ScoringBudget = ScoringBudget(),
                 device: torch.device | str = "cpu", access: LearnerAccess | None = None,
                 score: ScoreFunction | None = None, task_weights: torch.Tensor | None = None,
                 modality_weights: torch.Tensor | None = None, reweight: str = "none"):
        self.plan = plan
        self.strategy = strategy
        self.seed = seed
        self.score_source = "training" if strategy.free_scores_only else score_source
        self.refresh_fraction = refresh_fraction
        self.budget = budget
        self.device = device
        self.access = access
        self.score_fn = score or build_score("loss")
        self.task_weights = torch.ones(1) if task_weights is None else torch.as_tensor(task_weights, dtype=torch.float)
        self.modality_weights = modality_weights
        if reweight not in ("none", "unbiased"):
            raise ValueError(f"unknown reweight '{reweight}'; choose none or unbiased")
        if reweight == "unbiased" and strategy.trains_on_subsets and not strategy.has_unbiased_weights:
            raise ValueError(f"selection.strategy={strategy.name} has no unbiased weights; use selection.reweight=none")
        if self.score_fn.needs_history and strategy.needs_scores and self.score_source == "pass":
            raise ValueError(f"teaching.score={self.score_fn.name} needs a score history before the first selection, "
                             "which a scoring pass before each selection cannot give; use teaching.score_source=training")
        self.reweight = reweight
        self.table = ScoreTable(plan.num_samples, self.task_weights.numel(), device)
        self.reference: torch.Tensor | None = None  # N x T reference losses (learnability), once computed
        self.weights = torch.ones(plan.num_samples, device=device)  # the current subset's training weights
        self.weighting = False  # True while a weighted subset epoch runs (set by subset_for_epoch, resumes included)
        self.subset: torch.Tensor | None = None
        self.history: list[dict] = []
        # Per selection (in history's order): the chosen sample indices, and the N scores chosen by (None without)
        self.chosen: list[torch.Tensor] = []
        self.chosen_by: list[torch.Tensor | None] = []
        self.samples_scored = 0
        self.scoring_passes = 0
        self.scoring_seconds = 0.0  # this rank's measured scoring time, for the cost cap (kept across resumes)
        self.reference_seconds = 0.0  # learnability's reference model (not part of the cap's arithmetic)
        self.last_selection: dict | None = None  # the record of a selection made by the latest call, else None

    @classmethod
    def from_settings(cls, *, num_samples: int, epochs: int, ratio: RatioConfig, interval: IntervalConfig,
                      selection: SelectionConfig, teaching: TeachingConfig, seed: int,
                      device: torch.device | str = "cpu", access: LearnerAccess | None = None,
                      tasks: list[str] | None = None, task_weights: dict[str, float] | None = None) -> "Teacher":
        """The teacher of the ``ratio``, ``interval``, ``selection`` and ``teaching`` config groups; ``tasks``
        (in the order of the per-task losses) and ``task_weights`` come from the learner's objective."""
        plan = build_plan(
            num_samples=num_samples, epochs=epochs, strategy=selection.strategy, total_cycles=teaching.total_cycles,
            ratio=ratio.schedule, initial_ratio=ratio.initial_ratio, final_ratio=ratio.final_ratio,
            interval=interval.schedule, initial_interval=interval.initial_interval,
            max_interval=interval.max_interval, reselect_every_subset_epoch=selection.reselect_every_subset_epoch,
            prune_ratio=selection.prune_ratio, prune_delta=selection.prune_delta,
        )
        strategy = build_strategy(selection.strategy, selection.temperature, selection.normalization)
        tasks = list(tasks or ["loss"])
        weights = torch.tensor([float((task_weights or {}).get(t, 1.0)) for t in tasks])
        modality = None
        if teaching.score_modalities is not None:
            unknown = set(teaching.score_modalities) - set(tasks)
            if unknown:
                raise ValueError(f"teaching.score_modalities names {sorted(unknown)}, which the model does not "
                                 f"reconstruct; choose from {tasks}")
            modality = torch.tensor([float(teaching.score_modalities.get(t, 0.0)) for t in tasks])
        return cls(plan, strategy, seed=seed, score_source=teaching.score_source,
                   refresh_fraction=teaching.refresh_fraction, budget=ScoringBudget(teaching.max_scoring_fraction),
                   device=device, access=access, score=build_score(teaching.score), task_weights=weights,
                   modality_weights=modality, reweight=selection.reweight)

    @property
    def free_scores(self) -> bool:
        """Selections use training-step scores (refreshed in part), not a pass over every sample."""
        return self.strategy.needs_scores and self.score_source == "training"

    @property
    def samples_per_scoring(self) -> int:
        """Samples scored before each selection, at most (the cost cap may score fewer)."""
        if not self.strategy.needs_scores:
            return 0
        n = self.plan.num_samples
        return refresh_count(n, self.refresh_fraction) if self.free_scores else n

    def plan_table(self, batch_size: int) -> str:
        """The plan, its expected training work and its expected scoring work."""
        return plan_text(self, batch_size)

    def subset_for_epoch(self, spec: EpochSpec, step: int, resuming: bool = False) -> torch.Tensor | None:
        """The samples to train on in ``spec.epoch`` (None = all), selecting first when the plan says so. When
        ``resuming`` an epoch mid-way, its selection was already made: the current subset is returned."""
        self.last_selection = None
        if self.score_fn.needs_history:
            # Under DDP a sample trained on another rank since the last merge would otherwise shift a stale value
            # into its history: merge every epoch, so each rank records on top of the newest values.
            self.merge_rank_tables()
        self.weighting = spec.kind != FULL and self.reweight == "unbiased"
        if spec.kind == FULL:
            return None
        if spec.select and not resuming:
            self._select(spec, step)
        if self.subset is None:
            raise RuntimeError(f"epoch {spec.epoch + 1} is a subset epoch but no selection was made before it")
        return self.subset

    def _select(self, spec: EpochSpec, step: int) -> None:
        record = {"epoch": spec.epoch + 1, "cycle": spec.cycle + 1, "ratio": spec.ratio, "size": spec.size,
                  "interval": spec.interval, "step": step, "samples_scored": 0, "scoring_s": 0.0}
        if self.strategy.needs_scores:
            record.update(self._refresh_scores(spec, step))
            if self.score_fn.needs_reference and self.reference is None:
                record.update(self._score_reference())
        current = self.scores() if self.strategy.needs_scores else None
        scores = for_selection(current) if current is not None else torch.zeros(self.plan.num_samples)
        # Samples that failed to load (skip_bad_samples) are never selected: they would fail again.
        eligible = (~self.table.failed()).nonzero().squeeze(1)
        if eligible.numel() == 0:
            raise DataError("every training sample failed to load in the scoring pass; fix or replace the data files")
        g = generator(self.seed, STREAM_SELECT, spec.epoch)
        k = min(spec.size, eligible.numel())
        if self.reweight == "unbiased":
            chosen, w = self.strategy.select_weighted(scores[eligible], k, g)
            order = eligible[chosen].argsort()
            self.subset = eligible[chosen][order]
            self.weights = torch.ones(self.plan.num_samples, device=self.device)
            self.weights[self.subset.to(self.device)] = w[order].to(self.weights)
            record["weights"] = {"min": float(w.min()), "max": float(w.max()), "mean": float(w.mean())}
        else:
            chosen = self.strategy.select(scores[eligible], k, g)
            self.subset = eligible[chosen].sort().values
        if current is not None:
            record["score"] = self.score_fn.name
            record["scores"], record["score_histogram"] = score_stats(current), score_histogram(current)
            record["selected_score_mean"] = float(scores[self.subset].mean())
        self.history.append(record)
        self.chosen.append(self.subset.cpu().clone())
        self.chosen_by.append(None if current is None else current.clone())
        self.last_selection = record

    def scores(self) -> torch.Tensor:
        """N scores (CPU) of the score function, combined over tasks (NaN = no score yet, -inf = failed)."""
        t = self.table
        inputs = ScoreInputs(t.current.detach().float().cpu(), t.previous.detach().float().cpu(), self.reference)
        weights = self.task_weights if self.modality_weights is None else self.modality_weights
        return combine(self.score_fn.per_task(inputs), inputs.current, weights, self.modality_weights is not None)

    def weights_for(self, indices: torch.Tensor) -> torch.Tensor | None:
        """The training weights (B) of samples ``indices`` in the current epoch; None when unweighted."""
        if not self.weighting:
            return None
        return self.weights[indices.to(self.weights.device)]

    def _score_reference(self) -> dict:
        """learnability: train the reference model and keep its per-task losses on every training sample."""
        if self.access is None or self.access.reference_losses is None:
            raise RuntimeError(f"teaching.score={self.score_fn.name} needs a reference model, which this stage "
                               "cannot train")
        start = time.perf_counter()
        self.reference = self.access.reference_losses(torch.arange(self.plan.num_samples)).detach().float().cpu()
        if bool(torch.isnan(self.reference).any() | torch.isposinf(self.reference).any()):
            raise DataError("teaching.score=learnability: the reference model's losses are not finite (it diverged); "
                            "lower optim.blr or teaching.reference_epochs, or use teaching.score=loss")
        # A sample that failed to load in the reference pass would fail in training too: never select it.
        failed = torch.isneginf(self.reference).any(dim=1).to(self.table.current.device)
        self.table.current[failed] = float("-inf")
        seconds = time.perf_counter() - start
        self.reference_seconds += seconds
        # A one-off cost, in the run's scoring time but left out of the cap's arithmetic (both its scoring and its
        # wall seconds): the cap bounds the recurring refreshes, and charging it the reference would starve them.
        return {"reference_s": round(seconds, 3)}

    def _refresh_scores(self, spec: EpochSpec, step: int) -> dict:
        """Bring the scores up to date before a selection: a full pass (``pass``), or a refresh of the stalest
        training-step scores within the cost cap (``training``). Returns the record's scoring fields."""
        requested = self.samples_per_scoring
        if self.free_scores:
            self.merge_rank_tables()
            wanted = stalest(self.table.step, ~self.table.failed(), requested,
                             generator(self.seed, STREAM_REFRESH, spec.epoch))
            count, decision = self._affordable(wanted.numel())
            wanted = wanted[:count]
        else:
            wanted, decision = torch.arange(self.plan.num_samples), "full pass"
        start = time.perf_counter()
        scored = self.score(wanted, spec.epoch, step) if wanted.numel() else 0
        seconds = time.perf_counter() - start
        record = {"score_source": self.score_source, "samples_scored": scored, "refresh_requested": requested,
                  "refresh_decision": decision, "scoring_s": round(seconds, 3)}
        if scored and seconds > 0:
            record["scoring_samples_per_s"] = round(scored / seconds, 1)
        return record | score_ages(self.table.step, ~self.table.failed(), step)

    def _affordable(self, requested: int) -> tuple[int, str]:
        """The cost cap's decision, from numbers every rank agrees on (the maximum over ranks)."""
        wall, trained = self.access.work_so_far() if self.access is not None else (0.0, 0)
        wall -= self.reference_seconds  # the stage's scoring timer includes the one-off reference model
        numbers = torch.tensor([wall, self.scoring_seconds], dtype=torch.float64, device=self.device)
        if self.access is not None:
            numbers = self.access.gather(numbers).view(-1, 2).amax(dim=0)
        wall, scoring = (float(x) for x in numbers.cpu())
        return self.budget.allowed(requested, wall_s=wall, scoring_s=scoring, samples_trained=trained,
                                   samples_scored=self.samples_scored)

    def score(self, indices: torch.Tensor, epoch: int, step: int) -> int:
        """Refresh the scores of ``indices`` with a scoring pass (sharded across ranks by the learner's batches),
        as seen at optimizer ``step``; returns the number of samples scored."""
        if self.access is None:
            raise RuntimeError("this teacher has no LearnerAccess, so it cannot run a scoring pass")
        a = self.access
        start = time.perf_counter()
        with a.inference():
            idx, values = run_scoring_pass(a.score_batches(indices, epoch), a.per_task_losses, indices, a.gather,
                                           self.device)
            a.synchronize()
        self.scoring_seconds += time.perf_counter() - start
        self.table.record(idx, values, step)
        self.samples_scored += indices.numel()
        self.scoring_passes += 1
        return indices.numel()

    def merge_rank_tables(self) -> None:
        """With training-step scores under DDP each rank records only its own shard's losses: merge the ranks'
        tables (each sample's newest value wins), so every rank, and a checkpoint, holds them all. Idempotent."""
        if self.free_scores and self.access is not None:
            self.table.merge(self.access.gather)

    def observe(self, indices: torch.Tensor, per_task: torch.Tensor, weights: torch.Tensor, step: int) -> None:
        """Record the per-task losses (B x T) of samples ``indices`` (B) computed by optimizer step ``step`` (the
        number of updates before it), stamped ``step + 1``: the update it feeds. A refresh at a selection after
        ``step`` updates is stamped ``step``, so a sample trained right after being refreshed is strictly newer
        than its refresh on every rank, and merging rank tables (newest wins) never meets a tie. Weight-0
        padding is ignored."""
        self.table.record(indices, per_task.detach(), step + 1, keep=weights > 0)

    def describe(self, record: dict) -> str:
        """A log line for a selection record."""
        return selection_line(self, record)

    def finite_scores(self) -> torch.Tensor:
        """The current scores of samples that have one (CPU), e.g. for a histogram."""
        values = self.scores()
        return values[torch.isfinite(values)]

    def state_dict(self) -> dict:
        return {
            "table": self.table.state_dict(),
            "subset": None if self.subset is None else self.subset.clone(),
            "history": list(self.history),
            "chosen": list(self.chosen),
            "chosen_by": list(self.chosen_by),
            "samples_scored": self.samples_scored,
            "scoring_passes": self.scoring_passes,
            "scoring_seconds": self.scoring_seconds,
            "reference_seconds": self.reference_seconds,
            "reference": None if self.reference is None else self.reference.clone(),
            "weights": self.weights.cpu().clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.table.load_state_dict(state["table"])
        self.subset = state["subset"]
        self.history = list(state["history"])
        self.chosen = list(state.get("chosen", []))
        self.chosen_by = list(state.get("chosen_by", []))
        self.samples_scored = state.get("samples_scored", 0)
        self.scoring_passes = state.get("scoring_passes", 0)
        self.scoring_seconds = state.get("scoring_seconds", 0.0)
        self.reference_seconds = state.get("reference_seconds", 0.0)
        self.reference = state.get("reference")
        if state.get("weights") is not None:
            self.weights = state["weights"].to(self.device)
