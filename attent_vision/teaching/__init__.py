"""AtteNT teaching core, model-agnostic: it owns a whole selection round.

    settings.py       the ratio/interval/selection/teaching config groups this package consumes
    schedules.py      ratio and interval schedules (pure functions of the cycle index)
    plan.py           the epoch plan: every epoch of the budget, full or subset, decided up front
    epoch_plan.py     its records: EpochSpec (one planned epoch) and EpochPlan (step and sample accounting)
    strategies/       one file per selection strategy (none, random, rs2, hard, soft, prune) behind one interface
                      and registry, with the unbiased subset weights of each that has them
    selection.py      ``select``: the pure selection function of the public API
    scores/           score functions (loss, learnability, progress; a registry) and the per-modality combination
    score_table.py    per-task losses per sample, the previous ones, and the step they were taken at
    scoring_pass.py   a sharded inference-mode scoring pass
    refresh.py        free scores: which stalest samples a refresh re-scores, and score ages
    scoring_budget.py the cost-aware scorer: caps scoring at a share of wall time
    teacher.py        the teacher: plan + scores + strategy -> each epoch's subset and weights
    score_keeping.py  its scoring half: passes of K draws, refreshes, the reference, repeatability
    learner_access.py Learner: what the teacher may ask of the learner (LearnerAccess: one from functions)
    selection_record.py SelectionRecord: one selection's record (results.json "selections")
    narration.py      the plan's text and each selection's log line

It imports nothing from the engine or the stages: a stage hands the teacher one :class:`Learner`, and reads the
teacher's :class:`SelectionRecord` of each selection.
"""

from ..lazy_exports import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "EpochPlan": ".plan", "EpochSpec": ".plan", "build_plan": ".plan",
    "interval_schedule": ".schedules", "ratio_schedule": ".schedules", "subset_size": ".schedules",
    "ScoreTable": ".score_table", "build_strategy": ".selection", "select": ".selection",
    "Learner": ".learner_access", "LearnerAccess": ".learner_access", "Teacher": ".teacher",
    "SelectionRecord": ".selection_record",
})
__all__ = sorted(__dir__())
