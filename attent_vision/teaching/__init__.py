"""AtteNT teaching core, model-agnostic: schedules, selection, the epoch plan, scores, sampler and teacher."""

from .plan import EpochPlan, EpochSpec, build_plan
from .sampler import EpochBatchSampler, step_shapes
from .schedules import interval_schedule, ratio_schedule, subset_size
from .scores import ScoreTable
from .selection import build_strategy, select
from .teacher import Teacher

__all__ = [
    "EpochPlan", "EpochSpec", "build_plan", "EpochBatchSampler", "step_shapes", "interval_schedule",
    "ratio_schedule", "subset_size", "ScoreTable", "build_strategy", "select", "Teacher",
]
