"""How the teacher keeps its scores up to date: scoring passes of K draws, refreshes of free scores within the
cost cap, the learnability reference, normalised free scores, and the repeatability check at each selection.

A mixin of :class:`~attent_vision.teaching.teacher.Teacher` (which holds the state these methods read: the score
table, the access to the learner, the settings and counters); split out so that the teacher's own file is about
selection rounds.
"""

import time

import torch

from ..errors import DataError
from ..seeds import STREAM_REFRESH, STREAM_REPEAT, generator
from .epoch_plan import EpochSpec
from .refresh import score_ages, stalest
from .repeatability import agreement, repeat_sample
from .scores import ScoreInputs, combine
from .scoring_pass import run_scoring_pass


class ScoreKeeping:
    """Scoring methods of the teacher (see the module docstring)."""

    def scores(self) -> torch.Tensor:
        """N scores (CPU) of the score function, combined over tasks (NaN = no score yet, -inf = failed)."""
        return self._scores_of(self.table.current)

    def _scores_of(self, current: torch.Tensor, stamps: torch.Tensor | None = None) -> torch.Tensor:
        """N scores from the N x T per-task losses ``current`` (the table's previous ones and the reference); with
        normalised free scores each divided by the loss level at its stamp (``stamps``, default the table's)."""
        t = self.table
        current = current.detach().float().cpu()
        if self.loss_level is not None:
            current = current / self.loss_level.at(t.step if stamps is None else stamps).clamp_min(1e-12)
        inputs = ScoreInputs(current, t.previous.detach().float().cpu(), self.reference)
        weights = self.task_weights if self.modality_weights is None else self.modality_weights
        return combine(self.score_fn.per_task(inputs), inputs.current, weights, self.modality_weights is not None)

    def _score_reference(self) -> dict:
        """A score that needs a reference model (learnability): the learner trains (or loads) it, and its per-task
        losses on every training sample, each the mean over ``reference_draws`` draws, are kept."""
        make = self._need_access().reference_model
        start = time.perf_counter()
        with self.access.inference():
            made = make() if make is not None else None
            if made is None:
                raise RuntimeError(f"teaching.score={self.score_fn.name} needs a reference model, which this stage "
                                   "cannot train")
            model, about = made
            everything = torch.arange(self.plan.num_samples)
            losses = self._pass_losses(everything, 0, range(self.reference_draws), model)
            self.access.synchronize()
        self.reference_samples_scored += everything.numel() * self.reference_draws
        about = about | {"draws": self.reference_draws}
        self.reference = losses.detach().float().cpu()
        if bool(torch.isnan(self.reference).any() | torch.isposinf(self.reference).any()):
            raise DataError("teaching.score=learnability: the reference model's losses are not finite (it diverged); "
                            "lower optim.blr or teaching.reference_max_steps, or use teaching.score=loss")
        # A sample that failed to load in the reference pass would fail in training too: never select it.
        failed = torch.isneginf(self.reference).any(dim=1).to(self.table.current.device)
        self.table.current[failed] = float("-inf")
        seconds = time.perf_counter() - start
        self.reference_seconds += seconds
        # A one-off cost, in the run's scoring time but left out of the cap's arithmetic (both its scoring and its
        # wall seconds): the cap bounds the recurring refreshes, and charging it the reference would starve them.
        return {"reference_s": round(seconds, 3), "reference_model": about}

    def _refresh_scores(self, spec: EpochSpec, step: int) -> dict:
        """Bring the scores up to date before a selection: a full pass (``pass``), or a refresh of the stalest
        training-step scores within the cost cap (``training``). Returns the record's scoring fields."""
        requested = self.samples_per_scoring
        if self.free_scores:
            self.merge_rank_tables()
            wanted = stalest(self.table.step, ~self.table.failed(), requested,
                             generator(self.seed, STREAM_REFRESH, spec.epoch))
            # The cap counts forwards: K per sample with K draws
            forwards, decision = self._affordable(wanted.numel() * self.score_draws)
            wanted = wanted[:forwards // self.score_draws]
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
        """Refresh the scores of ``indices`` with a scoring pass of K draws (sharded across ranks by the learner's
        batches), as seen at optimizer ``step``; returns the number of samples scored."""
        a = self._need_access()
        start = time.perf_counter()
        with a.inference():
            values = self._pass_losses(indices, epoch, range(self.score_draws))
            a.synchronize()
        self.scoring_seconds += time.perf_counter() - start
        self.table.record(indices, values, step)
        self.samples_scored += indices.numel() * self.score_draws
        self.scoring_passes += 1
        return indices.numel()

    def _pass_losses(self, indices: torch.Tensor, epoch: int, draws: range, model=None) -> torch.Tensor:
        """M x T per-task losses of ``indices`` (M, in that order), averaged over the scoring passes of ``draws``
        (a sample that failed to load stays -inf); by the learner, or by the reference ``model`` it handed out."""
        a, total = self._need_access(), None
        losses = a.per_task_losses if model is None else (lambda batch: a.per_task_losses(batch, model))
        position = torch.empty(self.plan.num_samples, dtype=torch.long)
        position[indices.cpu()] = torch.arange(indices.numel())
        for draw in draws:
            idx, values = run_scoring_pass(a.score_batches(indices, epoch, draw), losses, indices, a.gather,
                                           self.device)
            ordered = torch.empty_like(values)
            ordered[position[idx.cpu()].to(values.device)] = values
            total = ordered if total is None else total + ordered
        return total / len(draws)

    def _need_access(self):
        if self.access is None:
            raise RuntimeError("this teacher has no learner, so it cannot run a scoring pass")
        return self.access

    def _repeatability(self, spec: EpochSpec, step: int) -> dict | None:
        """Score a random few eligible samples again under independent draws (draws K..2K-1 of this selection)
        and compare with the scores the selection is about to use (repeatability.py)."""
        sample = repeat_sample(~self.table.failed(), self.repeatability_samples,
                               generator(self.seed, STREAM_REPEAT, spec.epoch))
        if sample.numel() < 3:
            return None
        self._need_access()
        with self.access.measurement():
            fresh = self._pass_losses(sample, spec.epoch, range(self.score_draws, 2 * self.score_draws))
            self.access.synchronize()
        self.samples_remeasured += sample.numel() * self.score_draws
        current, stamps = self.table.current.clone(), self.table.step.clone()
        current[sample.to(current.device)] = fresh.to(current)
        stamps[sample.to(stamps.device)] = step  # measured now: the level of now, were scores normalised
        # No timing in the record: records must match between a resumed and an uninterrupted run (its time is
        # in the run's eval phase).
        return agreement(self.scores()[sample], self._scores_of(current, stamps)[sample]) | {
            "draws": self.score_draws}

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
        padding is ignored. With normalised free scores, the batch also feeds the loss level (loss_level.py)."""
        values = per_task.detach()
        if self.loss_level is not None:
            self.loss_level.observe(values, weights, step, self.in_full_epoch)
        self.table.record(indices, values, step + 1, keep=weights > 0)
