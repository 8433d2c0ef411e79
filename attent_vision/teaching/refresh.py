"""The budgeted refresh of free scores: which samples to re-score before a selection, and how old the scores are.

With ``teaching.score_source=training`` a sample's score is the objective of the last training step that saw it
(free: no extra forward). Samples left out of the subset are not trained on, so their scores age; before each
selection a no-grad pass re-scores the stalest ``refresh_fraction`` of the samples. Ordering by the step a score
was taken at puts first the samples never scored, then those not trained on since the previous selection, then the
oldest; ties are broken by a permutation seeded by (seed, epoch), identical on every rank.

Starvation bound: take a sample whose score was taken at step s. The set of samples with scores from step s or
earlier never grows (a refreshed or trained sample becomes the newest), and each refresh of k = ceil(f N) samples
takes k of that set until the sample itself is taken; the set has at most N members, so every sample is re-scored
at least once every ceil(N / k) <= ceil(1 / f) selections, whatever the strategy picks. The cost cap
(scoring_budget.py) can shrink a refresh and then weakens the bound; the record of each selection says when it did.
"""

import math

import torch


def refresh_count(num_samples: int, fraction: float) -> int:
    """How many samples one refresh re-scores: ceil(fraction x N), at least 1 (fraction > 0)."""
    return max(1, min(num_samples, math.ceil(fraction * num_samples - 1e-9)))


def stalest(score_steps: torch.Tensor, eligible: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """The ``count`` eligible samples whose scores are oldest, stalest first.

    score_steps: N long, the optimizer step each score was taken at (-1 = never scored); eligible: N bool (False
    for samples that failed to load); returns M <= count long indices, in order of staleness.
    """
    steps = score_steps.detach().cpu()
    order = torch.randperm(steps.numel(), generator=generator)  # random tie-break among equal steps
    order = order[torch.argsort(steps[order], stable=True)]
    order = order[eligible.cpu()[order]]
    return order[:count]


def score_ages(score_steps: torch.Tensor, eligible: torch.Tensor, step: int) -> dict[str, float | int | None]:
    """Mean and max age (optimizer steps since the score was taken) of the eligible samples' scores at ``step``,
    and how many eligible samples have never been scored (they are ranked as hardest by the selection)."""
    steps = score_steps.detach().cpu()[eligible.cpu()]
    scored = steps[steps >= 0]
    if scored.numel() == 0:
        return {"score_age_mean": None, "score_age_max": None, "never_scored": int(steps.numel())}
    ages = (step - scored).double()
    return {"score_age_mean": round(float(ages.mean()), 2), "score_age_max": int(ages.max()),
            "never_scored": int(steps.numel() - scored.numel())}
