"""The cost-aware scorer: how many samples a refresh may score without scoring exceeding its share of wall time.

``teaching.max_scoring_fraction`` = m caps the scoring seconds S at m of the run's time W so far (training, data
waiting and scoring; start-up, validation and checkpoints are not training and do not count). A pass of n samples at
c seconds each keeps S + n c <= m (W + n c), i.e. n <= (m W - S) / (c (1 - m)). Below the request the pass is shrunk
(the stalest first, since the request is ordered that way); at zero it is skipped. c is measured online: the seconds per
sample of this run's scoring passes so far; before the first pass, ``prior_cost_ratio`` times the measured cost of
training on one sample (forward only and no optimizer step: about half, measured on CPU, and less on GPU).

Decisions depend on measured time, so a run whose cap binds is not bit-reproducible; every rank decides from the
same (all-ranks maximum) numbers, so ranks always agree. ``max_scoring_fraction=null`` turns the cap off.
"""

import math
from dataclasses import dataclass

WITHIN, SHRUNK, SKIPPED, UNCAPPED = "within cap", "shrunk by cap", "skipped by cap", "uncapped"


@dataclass(frozen=True)
class ScoringBudget:
    max_fraction: float | None = 0.05  # None = no cap
    prior_cost_ratio: float = 0.5  # scoring cost of one sample / training cost of one, until a pass is measured

    def allowed(self, requested: int, *, wall_s: float, scoring_s: float, samples_trained: int,
                samples_scored: int) -> tuple[int, str]:
        """(samples to score, decision) for a pass of ``requested`` samples, given the run so far."""
        m = self.max_fraction
        if m is None or m >= 1 or requested == 0:
            return requested, UNCAPPED
        if samples_scored > 0:
            cost = scoring_s / samples_scored
        elif samples_trained > 0:
            cost = self.prior_cost_ratio * max(wall_s - scoring_s, 0.0) / samples_trained
        else:
            return requested, UNCAPPED  # nothing measured yet: no basis for a cap
        if cost <= 0:
            return requested, WITHIN
        n = math.floor((m * wall_s - scoring_s) / (cost * (1 - m)))
        if n >= requested:
            return requested, WITHIN
        if n >= 1:
            return n, SHRUNK
        return 0, SKIPPED
