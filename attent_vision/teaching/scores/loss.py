"""``loss``: the sample's own objective (AtteNT's discrepancy: the learner is most wrong where the loss is largest)."""

import torch

from .base import ScoreFunction, ScoreInputs


class LossScore(ScoreFunction):
    name = "loss"

    def per_task(self, inputs: ScoreInputs) -> torch.Tensor:
        return inputs.current
