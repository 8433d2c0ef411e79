"""An extension that takes a built-in's name: refused at its own import (tests/test_extension_points.py)."""

from attent_vision.teaching.scores import SCORES, ScoreFunction


@SCORES.register()
class AnotherLoss(ScoreFunction):
    name = "loss"  # the built-in's
