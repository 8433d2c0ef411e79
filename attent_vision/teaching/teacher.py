"""The teacher: follows the epoch plan, keeps the score table, and hands the sampler each epoch's subset.

The training loop asks ``indices_for_epoch(spec, score_fn)`` before every epoch and gets ``None`` (full data) or
the subset; it passes each step's per-sample losses to ``observe``. The loop never needs to know which strategy is
active. Selections are drawn from generators seeded by (seed, epoch), so every rank computes the same subset from
the same (gathered) scores, and a resumed run repeats them exactly.
"""

import logging
from typing import Callable

import torch

from ..data.views import derive_seed
from .plan import FULL, EpochPlan, EpochSpec
from .scores import ScoreTable
from .strategies import SelectionStrategy

log = logging.getLogger(__name__)

STREAM_SELECT = 5
ScoreFn = Callable[[], tuple[torch.Tensor, torch.Tensor]]


class Teacher:
    """Args:
        plan: the epoch plan (which epochs are subset epochs, their sizes, when to reselect).
        strategy: the selection strategy, or None for full-data training.
        seed: run seed; selections use generators derived from (seed, epoch).
        score_source: ``pass`` (score every sample with a no-grad pass before selecting) or ``training``
            (select on the losses recorded during training steps: no extra pass, but older and noisier scores).
        gather: under DDP, a function concatenating a tensor across ranks; with ``score_source=training`` the ranks'
            tables (each holding its own shard's losses) are merged through it before every selection.
    """

    def __init__(self, plan: EpochPlan, strategy: SelectionStrategy | None, *, seed: int, score_source: str = "pass",
                 device: torch.device | str = "cpu", gather: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.plan = plan
        self.strategy = strategy
        self.seed = seed
        self.score_source = score_source
        self.table = ScoreTable(plan.num_samples, device)
        self.subset: torch.Tensor | None = None
        self.history: list[dict] = []
        self.gather = gather

    @property
    def needs_scoring_pass(self) -> bool:
        return self.strategy is not None and self.strategy.needs_scores and self.score_source == "pass"

    def indices_for_epoch(self, spec: EpochSpec, score_fn: ScoreFn, step: int) -> torch.Tensor | None:
        """The samples to train on in ``spec.epoch`` (None = all). Runs ``score_fn`` first when the plan selects
        before this epoch and the strategy needs fresh scores; ``score_fn`` returns (indices N, scores N)."""
        if spec.kind == FULL:
            return None
        if spec.select:
            if self.needs_scoring_pass:
                indices, values = score_fn()
                self.table.record(indices, values, step)
            elif self.strategy.needs_scores and self.gather is not None:
                self.table.merge(self.gather)
            scores = self.table.for_selection() if self.strategy.needs_scores else torch.zeros(self.plan.num_samples)
            # Samples that failed to load (skip_bad_samples) are never selected: they would fail again.
            eligible = (~self.table.failed()).nonzero().squeeze(1)
            if eligible.numel() == 0:
                raise RuntimeError("every training sample failed to load in the scoring pass")
            generator = torch.Generator().manual_seed(derive_seed(self.seed, STREAM_SELECT, spec.epoch))
            chosen = self.strategy.select(scores[eligible], min(spec.size, eligible.numel()), generator)
            self.subset = eligible[chosen].sort().values
            record = {"epoch": spec.epoch, "cycle": spec.cycle, "ratio": spec.ratio, "size": spec.size,
                      "interval": spec.interval, "step": step}
            if self.strategy.needs_scores:
                record["scores"] = self.table.stats()
                record["selected_score_mean"] = float(scores[self.subset].mean())
            self.history.append(record)
        if self.subset is None:
            raise RuntimeError(f"epoch {spec.epoch} is a subset epoch but no selection was made before it")
        return self.subset

    def observe(self, indices: torch.Tensor, per_sample: torch.Tensor, weights: torch.Tensor, step: int) -> None:
        """Record a training step's per-sample objective (B) for samples ``indices`` (B); weight-0 padding is
        ignored."""
        self.table.record(indices, per_sample.detach(), step, keep=weights > 0)

    def state_dict(self) -> dict:
        return {
            "table": self.table.state_dict(),
            "subset": None if self.subset is None else self.subset.clone(),
            "history": list(self.history),
        }

    def load_state_dict(self, state: dict) -> None:
        self.table.load_state_dict(state["table"])
        self.subset = state["subset"]
        self.history = list(state["history"])
