"""A toy score function and a toy selection strategy, registered from outside the package."""

import torch

from attent_vision.teaching.scores import SCORES, ScoreFunction, ScoreInputs
from attent_vision.teaching.strategies import STRATEGIES, SelectionStrategy


@SCORES.register()
class SquaredLossScore(ScoreFunction):
    name = "toy_squared_loss"
    description = "the square of the sample's loss (a toy)"

    def per_task(self, inputs: ScoreInputs) -> torch.Tensor:
        return inputs.current.square()


@STRATEGIES.register()
class EasiestSelection(SelectionStrategy):
    name = "toy_easiest"
    description = "the k samples with the lowest scores (a toy)"
    has_unbiased_weights = False

    def select(self, scores: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        return torch.argsort(scores, stable=True)[:k]
