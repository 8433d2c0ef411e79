"""``learnability``: the loss the learner could still remove, loss minus an estimate of the irreducible loss.

The largest losses are mostly noise no learner can fit (on the embedded data, 92.5% of the hard top 20% are the
noisiest scenes). RHO-LOSS (Mindermann et al., 2022) estimates a sample's irreducible loss with a model trained on
holdout data, which has never seen the sample and so cannot have memorised it; JEST (Evans et al., 2024) uses a
pretrained reference the same way. Here the reference is the learner's architecture trained to a plateau (in
optimizer steps, up to ``teaching.reference_max_steps``) on a holdout carved from the training split
(``teaching.reference_holdout``: those samples leave the learner's training set, so the reference never scores a
sample it trained on, and validation stays untouched), cached for every run of a sweep, then used once to score
every training sample, each score the mean over ``teaching.reference_draws`` mask draws (pretraining/reference.py);
its per-task losses are kept with the teacher (and its checkpoints), so the score stays free after that:
learnability = current loss - reference loss, per task.

Why a holdout model and not an EMA of the learner: an EMA is trained on the same samples, so its loss falls on the
samples the learner fits (their reducible part) as much as on any other: loss minus EMA loss measures recent
progress, not what is left to learn (that is ``progress``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import SCORES, ScoreFunction, ScoreInputs

if TYPE_CHECKING:
    import torch


@SCORES.register()
class LearnabilityScore(ScoreFunction):
    name = "learnability"
    description = ("loss - a holdout-trained reference model's loss (the reference trains to a plateau on a "
                   "holdout carved from the training data, or is reused from the cache, and scores the samples "
                   "before the first selection)")
    needs_reference = True

    def per_task(self, inputs: ScoreInputs) -> torch.Tensor:
        if inputs.reference is None:
            raise RuntimeError("teaching.score=learnability: the reference losses are missing (they are computed "
                               "before the first selection); this is a bug")
        # A never-scored sample stays NaN (ranked first); combine() marks failed samples -inf.
        return inputs.current - inputs.reference
