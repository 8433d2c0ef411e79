"""``progress``: how much a sample's loss fell between its previous score and its newest one.

A sample on which the learner is making progress is one it is learning from now; one whose loss no longer moves is
either learnt or unlearnable. The teacher keeps the previous per-task losses beside the newest (score_table.py);
a sample scored once has no progress yet (NaN: ranked first, like a sample never scored). Needs scores taken
between selections, i.e. free training-step scores (``teaching.score_source=training``): with a scoring pass
before each selection the first selection would have no history at all (the config refuses it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import SCORES, ScoreFunction, ScoreInputs

if TYPE_CHECKING:
    import torch


@SCORES.register()
class ProgressScore(ScoreFunction):
    name = "progress"
    description = "how much the loss fell since the sample's previous score"
    needs_history = True

    def per_task(self, inputs: ScoreInputs) -> torch.Tensor:
        import torch

        fell = inputs.previous - inputs.current
        # No finite previous value (never scored twice, or failed to load once): no progress yet. combine() marks
        # samples that failed now -inf.
        return torch.where(torch.isfinite(inputs.previous), fell, torch.full_like(fell, float("nan")))
