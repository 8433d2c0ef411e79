"""The teacher: owns every selection round of a run, behind one small interface.

The training stage asks ``subset_for_epoch(spec, step)`` before every planned epoch and gets ``None`` (full data)
or the subset to train on, and passes each training step's per-sample losses to ``observe``. Everything in
between is the teacher's: whether the plan selects before this epoch, whether the strategy needs fresh scores,
what a score is (scores/: loss, learnability, progress, per-modality weights), the subset's weights (``weights_for``;
``selection.reweight=unbiased``), every scoring pass (through the one :class:`Learner` the stage hands it, the only
thing it knows about the learner; a reference model too is the learner's to train and the teacher's to score with),
the selection, its timing and its :class:`SelectionRecord` in ``history`` (the stage reads ``last_selection``,
``last_scores()`` for the histogram and ``result_details()``). Selections are drawn from generators seeded by
(seed, epoch), so every rank computes the same subset from the same gathered scores, and a resumed run repeats
them exactly. Nothing here imports the engine: the stage adapts the learner to :class:`Learner`.
"""

import torch

from ..errors import DataError
from ..seeds import STREAM_SELECT, generator
from .epoch_plan import FULL, EpochPlan, EpochSpec
from .learner_access import Learner, LearnerAccess
from .loss_level import LossLevel
from .narration import plan_text, selection_line
from .plan import build_plan
from .refresh import refresh_count
from .score_keeping import ScoreKeeping
from .score_table import ScoreTable, for_selection, score_histogram, score_stats
from .scores import ScoreFunction, build_score
from .scoring_budget import ScoringBudget
from .selection_record import SelectionRecord
from .settings import IntervalConfig, RatioConfig, SelectionConfig, TeachingConfig
from .strategies import STRATEGIES, SelectionRound, SelectionStrategy

__all__ = ["Learner", "LearnerAccess", "SelectionRecord", "Teacher"]


class Teacher(ScoreKeeping):
    """The scoring half (passes, refreshes, the reference, repeatability) is in score_keeping.py. Args:
        plan: the epoch plan (which epochs are subset epochs, their sizes, when to reselect).
        strategy: the selection strategy (``none`` for full data).
        seed: run seed; selections use generators derived from (seed, epoch).
        score_source: ``pass`` (the paper: score every sample with a no-grad pass before selecting) or
            ``training`` (free scores: the losses recorded during training steps, plus a budgeted refresh of the
            stalest ``refresh_fraction`` of the samples before each selection; see refresh.py).
        budget: the cost cap on refresh passes (scoring_budget.py); ``pass`` scoring is never capped.
        access: the :class:`Learner`: how to score samples and gather across ranks (needed when selections need
            scores); the teacher runs every scoring pass through it.
        score: what a score is (scores/), from per-task losses; task_weights (T): the objective's weights, which
            combine the tasks when ``modality_weights`` (T) is None; with it, each task is normalised by its mean.
        reweight: ``none`` or ``unbiased`` (train on the subset with weights k / (N pi_i); not with hard).
        score_draws: K; each scoring pass or refresh averages a sample's per-task losses over K draws of its masks
            (and crops, where the scoring view augments).
        normalize_free_scores: divide each free score (training step or refresh) by the training loss level at its
            step (per task; an EMA of full-data batches' mean loss), so that scores taken at different steps rank
            by how hard the sample is, not by how early the score was taken.
        repeatability_samples: at each selection, score this many eligible samples a second time with independent
            draws and record how well the two measurements agree (repeatability.py); 0 = never.
        reference_draws: a score that needs a reference model averages each sample's reference losses over this many
            draws.
    """

    def __init__(self, plan: EpochPlan, strategy: SelectionStrategy, *, seed: int, score_source: str = "pass",
                 refresh_fraction: float = 0.1, budget: ScoringBudget = ScoringBudget(),
                 device: torch.device | str = "cpu", access: Learner | None = None,
                 score: ScoreFunction | None = None, task_weights: torch.Tensor | None = None,
                 modality_weights: torch.Tensor | None = None, reweight: str = "none", score_draws: int = 1,
                 normalize_free_scores: bool = False, repeatability_samples: int = 0, reference_draws: int = 1):
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
                             "which a scoring pass before each selection cannot give; use "
                             "teaching.score_source=training")
        if score_draws < 1:
            raise ValueError(f"teaching.score_draws must be >= 1, got {score_draws}")
        if normalize_free_scores and strategy.needs_scores:
            if self.score_source != "training":
                raise ValueError("teaching.normalize_free_scores=true normalises free scores, which this run does "
                                 "not use; add teaching.score_source=training")
            if not self.score_fn.relative_to_loss_level:
                raise ValueError(f"teaching.normalize_free_scores=true normalises loss scores (ratios to the loss "
                                 f"level), not teaching.score={self.score_fn.name}; use one of the two")
        self.reweight = reweight
        self.score_draws = score_draws
        self.repeatability_samples = repeatability_samples
        self.reference_draws = reference_draws
        # The training loss level free scores are divided by (loss_level.py); None when they are not normalised
        self.loss_level = (LossLevel(self.task_weights.numel(), access.gather if access is not None else None)
                           if normalize_free_scores and strategy.needs_scores else None)
        self.in_full_epoch = True  # the epoch in progress is a full-data one (its batches set the loss level)
        self.table = ScoreTable(plan.num_samples, self.task_weights.numel(), device)
        self.reference: torch.Tensor | None = None  # N x T reference losses (learnability), once computed
        self.weights = torch.ones(plan.num_samples, device=device)  # the current subset's training weights
        self.weighting = False  # True while a weighted subset epoch runs (set by subset_for_epoch, resumes included)
        self.subset: torch.Tensor | None = None
        self.history: list[SelectionRecord] = []
        # Per selection (in history's order): the chosen sample indices, and the N scores chosen by (None without)
        self.chosen: list[torch.Tensor] = []
        self.chosen_by: list[torch.Tensor | None] = []
        self.samples_scored = 0  # forwards of scoring passes and refreshes (K per sample with K draws)
        self.samples_remeasured = 0  # forwards of the repeatability checks (an instrument: not the method's cost)
        self.reference_samples_scored = 0  # forwards of the reference model's passes
        self.scoring_passes = 0
        self.scoring_seconds = 0.0  # this rank's measured scoring time, for the cost cap (kept across resumes)
        self.reference_seconds = 0.0  # learnability's reference model (not part of the cap's arithmetic)
        self.last_selection: SelectionRecord | None = None  # the record of a selection made by the latest call

    @classmethod
    def from_settings(cls, *, num_samples: int, epochs: int, ratio: RatioConfig, interval: IntervalConfig,
                      selection: SelectionConfig, teaching: TeachingConfig, seed: int,
                      device: torch.device | str = "cpu", learner: Learner | None = None,
                      tasks: list[str] | None = None, task_weights: dict[str, float] | None = None) -> "Teacher":
        """The teacher of the ``ratio``, ``interval``, ``selection`` and ``teaching`` config groups; ``tasks``
        (in the order of the per-task losses) and ``task_weights`` come from the learner's objective."""
        strategy = STRATEGIES.get(selection.strategy).from_config(selection)
        plan = build_plan(
            num_samples=num_samples, epochs=epochs, strategy=strategy, total_cycles=teaching.total_cycles,
            ratio=ratio.schedule, initial_ratio=ratio.initial_ratio, final_ratio=ratio.final_ratio,
            interval=interval.schedule, initial_interval=interval.initial_interval,
            max_interval=interval.max_interval, reselect_every_subset_epoch=selection.reselect_every_subset_epoch,
        )
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
                   device=device, access=learner, score=build_score(teaching.score), task_weights=weights,
                   modality_weights=modality, reweight=selection.reweight, score_draws=teaching.score_draws,
                   normalize_free_scores=teaching.normalize_free_scores,
                   repeatability_samples=teaching.repeatability_samples, reference_draws=teaching.reference_draws)

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
        if self.loss_level is not None:
            self.loss_level.fold()  # the previous epoch's last step, before anything reads the levels
        self.in_full_epoch = spec.kind == FULL
        if spec.kind == FULL:
            return None
        if spec.select and not resuming:
            self._select(spec, step)
        if self.subset is None:
            raise RuntimeError(f"epoch {spec.epoch + 1} is a subset epoch but no selection was made before it")
        return self.subset

    def _select(self, spec: EpochSpec, step: int) -> None:
        record = SelectionRecord(epoch=spec.epoch + 1, cycle=spec.cycle + 1, ratio=spec.ratio, size=spec.size,
                                 interval=spec.interval, step=step)
        if self.strategy.needs_scores:
            record.update(self._refresh_scores(spec, step))
            if self.score_fn.needs_reference and self.reference is None:
                record.update(self._score_reference())
            if self.repeatability_samples > 0:
                record.repeatability = self._repeatability(spec, step)
        current = self.scores() if self.strategy.needs_scores else None
        scores = for_selection(current) if current is not None else torch.zeros(self.plan.num_samples)
        # Samples that failed to load (skip_bad_samples) are never selected: they would fail again.
        eligible = (~self.table.failed()).nonzero().squeeze(1)
        if eligible.numel() == 0:
            raise DataError("every training sample failed to load in the scoring pass; fix or replace the data files")
        g = generator(self.seed, STREAM_SELECT, spec.epoch)
        k = min(spec.size, eligible.numel())
        # What earlier selections drew (RS2 continues its permutation from there); checkpointed with ``chosen``
        earlier = tuple(int(c.numel()) for c in self.chosen)
        round_ = SelectionRound(self.seed, spec.epoch, sum(earlier), earlier)
        if self.reweight == "unbiased":
            chosen, w = self.strategy.select_weighted_round(scores[eligible], k, g, round_)
            order = eligible[chosen].argsort()
            self.subset = eligible[chosen][order]
            self.weights = torch.ones(self.plan.num_samples, device=self.device)
            self.weights[self.subset.to(self.device)] = w[order].to(self.weights)
            record.weights = {"min": float(w.min()), "max": float(w.max()), "mean": float(w.mean())}
        else:
            chosen = self.strategy.select_round(scores[eligible], k, g, round_)
            self.subset = eligible[chosen].sort().values
        if current is not None:
            record.score = self.score_fn.name
            record.scores, record.score_histogram = score_stats(current), score_histogram(current)
            record.selected_score_mean = float(scores[self.subset].mean())
        self.history.append(record)
        self.chosen.append(self.subset.cpu().clone())
        self.chosen_by.append(None if current is None else current.clone())
        self.last_selection = record

    def weights_for(self, indices: torch.Tensor) -> torch.Tensor | None:
        """The training weights (B) of samples ``indices`` in the current epoch; None when unweighted."""
        if not self.weighting:
            return None
        return self.weights[indices.to(self.weights.device)]

    def describe(self, record: SelectionRecord) -> str:
        """A log line for a selection record."""
        return selection_line(self, record)

    def last_scores(self) -> torch.Tensor | None:
        """The finite scores the latest selection ranked (CPU; for a histogram), None when it needed none."""
        by = self.chosen_by[-1] if self.chosen_by else None
        return None if by is None else by[torch.isfinite(by)]

    def result_details(self) -> dict:
        """The teacher's fields of results.json."""
        return {"samples_scored": self.samples_scored, "scoring_passes": self.scoring_passes,
                "samples_remeasured": self.samples_remeasured,  # the repeatability checks (not cost)
                "selections": [r.to_dict() for r in self.history]}

    def state_dict(self) -> dict:
        """The checkpoint's teacher state; a collective under DDP (every rank's free scores are merged first), so
        every rank calls it."""
        self.merge_rank_tables()
        return {
            "table": self.table.state_dict(),
            "subset": None if self.subset is None else self.subset.clone(),
            "history": [r.to_dict() for r in self.history],
            "chosen": list(self.chosen),
            "chosen_by": list(self.chosen_by),
            "samples_scored": self.samples_scored,
            "samples_remeasured": self.samples_remeasured,
            "reference_samples_scored": self.reference_samples_scored,
            "loss_level": None if self.loss_level is None else self.loss_level.state_dict(),
            "scoring_passes": self.scoring_passes,
            "scoring_seconds": self.scoring_seconds,
            "reference_seconds": self.reference_seconds,
            "reference": None if self.reference is None else self.reference.clone(),
            "weights": self.weights.cpu().clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.table.load_state_dict(state["table"])
        self.subset = state["subset"]
        self.history = [SelectionRecord.from_dict(r) for r in state["history"]]
        self.chosen = list(state.get("chosen", []))
        self.chosen_by = list(state.get("chosen_by", []))
        self.samples_scored = state.get("samples_scored", 0)
        self.samples_remeasured = state.get("samples_remeasured", 0)
        if self.loss_level is not None:
            if state.get("loss_level") is None:
                raise ValueError("this checkpoint has no loss level for teaching.normalize_free_scores=true: it was "
                                 "written without the option; resume it without the option, or start over")
            self.loss_level.load_state_dict(state["loss_level"])
        self.scoring_passes = state.get("scoring_passes", 0)
        self.scoring_seconds = state.get("scoring_seconds", 0.0)
        self.reference_seconds = state.get("reference_seconds", 0.0)
        self.reference = state.get("reference")
        # checkpoints from before the count: the reference passes then took this run's reference draws
        self.reference_samples_scored = state.get("reference_samples_scored", 0 if self.reference is None else
                                                  int(self.reference.shape[0]) * self.reference_draws)
        if state.get("weights") is not None:
            self.weights = state["weights"].to(self.device)
