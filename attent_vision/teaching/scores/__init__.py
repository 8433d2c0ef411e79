"""Score functions, one file each, behind one interface (base.py): what makes a sample worth training on.

    loss           the sample's objective (AtteNT; the paper's rows)
    learnability   loss minus a holdout-trained reference model's loss (RHO-LOSS-style; reducible loss)
    progress       how much the loss fell since the sample's previous score
    modalities.py  per-task scores -> one score per sample (objective weights, or normalised modality weights)
"""

from .base import ScoreFunction, ScoreInputs
from .learnability import LearnabilityScore
from .loss import LossScore
from .modalities import combine
from .progress import ProgressScore

SCORES: dict[str, type[ScoreFunction]] = {
    "loss": LossScore,
    "learnability": LearnabilityScore,
    "progress": ProgressScore,
}


def build_score(name: str) -> ScoreFunction:
    if name not in SCORES:
        raise ValueError(f"unknown score function '{name}'; choose from {list(SCORES)}")
    return SCORES[name]()


__all__ = ["SCORES", "ScoreFunction", "ScoreInputs", "build_score", "combine"]
