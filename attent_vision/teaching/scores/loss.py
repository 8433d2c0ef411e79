"""``loss``: the sample's own objective (AtteNT's discrepancy: the learner is most wrong where the loss is largest)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import SCORES, ScoreFunction, ScoreInputs

if TYPE_CHECKING:
    import torch


@SCORES.register()
class LossScore(ScoreFunction):
    name = "loss"
    description = "the sample's loss"
    relative_to_loss_level = True

    def per_task(self, inputs: ScoreInputs) -> torch.Tensor:
        return inputs.current
