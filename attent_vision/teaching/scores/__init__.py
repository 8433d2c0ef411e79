"""Score functions, one file each, behind one interface (base.py): what makes a sample worth training on.

    loss           the sample's objective (AtteNT; the paper's rows)
    learnability   loss minus a holdout-trained reference model's loss (RHO-LOSS-style; reducible loss)
    progress       how much the loss fell since the sample's previous score
    modalities.py  per-task scores -> one score per sample (objective weights, or normalised modality weights)

A new score is one module here (or in the user's ``extensions``) whose class carries ``@SCORES.register()``.
"""

from .base import SCORES, ScoreFunction, ScoreInputs
from .modalities import combine


def build_score(name: str) -> ScoreFunction:
    """The registered score function ``name`` (a one-line error listing the registered ones if there is none)."""
    return SCORES.get(name)()


__all__ = ["SCORES", "ScoreFunction", "ScoreInputs", "build_score", "combine"]
