"""The record of one selection round: written by the teacher, read by the stage (the tracker, selections.npz), the
log line (narration.py), the report and the benchmarks.

results.json's ``selections`` entries are these records as dicts, with the keys they always had: a field never set
for this selection (no scores needed, no reference model, ...) is left out of the dict, and one set to None (no
score ages yet, a repeatability check with too few samples) is written as null. Files written by other versions
load: missing keys become None, unknown keys are kept in ``other`` and written back.
"""

from dataclasses import dataclass, field, fields
from typing import Any, Optional

ALWAYS = ("epoch", "cycle", "ratio", "size", "interval", "step", "samples_scored", "scoring_s")  # in every record


@dataclass
class SelectionRecord:
    epoch: int  # the 1-based epoch the selection was made before
    cycle: int  # the 1-based cycle (prune: 1)
    ratio: float  # the planned share of the data
    size: int  # the planned subset size
    interval: int  # subset epochs of the cycle
    step: int  # optimizer steps before the selection
    samples_scored: int = 0  # samples scored for it (K forwards each with K draws)
    scoring_s: float = 0.0  # seconds its scoring took
    # how the scores were brought up to date (teacher's score_keeping.py; None when no scores were needed)
    score_source: Optional[str] = None  # pass | training
    refresh_requested: Optional[int] = None  # samples the pass or refresh asked for
    refresh_decision: Optional[str] = None  # the cost cap's decision (scoring_budget.py), or "full pass"
    scoring_samples_per_s: Optional[float] = None
    score_age_mean: Optional[float] = None  # optimizer steps since the eligible samples' scores were taken
    score_age_max: Optional[int] = None
    never_scored: Optional[int] = None
    reference_s: Optional[float] = None  # seconds the reference model took (learnability, first selection)
    reference_model: Optional[dict] = None  # its steps, stop reason, final loss, holdout size
    repeatability: Optional[dict] = None  # spearman, top_overlap, samples, draws (repeatability.py)
    score: Optional[str] = None  # the score function's name
    scores: Optional[dict] = None  # statistics of the scores (score_table.py score_stats)
    score_histogram: Optional[dict] = None
    selected_score_mean: Optional[float] = None
    weights: Optional[dict] = None  # min, max, mean of the unbiased subset weights
    repeated: Optional[int] = None  # repeats that filled a subset short of loadable samples (the stage)
    other: dict = field(default_factory=dict)  # keys this version does not know (kept on a round trip)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_given", set())  # the optional fields set after construction (not a field)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        given = self.__dict__.get("_given")
        if given is not None:
            given.add(name)

    @classmethod
    def from_dict(cls, entry: dict) -> "SelectionRecord":
        record = cls(**{k: entry.get(k) for k in ("epoch", "cycle", "ratio", "size", "interval", "step")})
        record.update(entry)
        return record

    def to_dict(self) -> dict[str, Any]:
        """The results.json entry: the fields every record has, and each other field that was set (None too)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "other" and
                (f.name in ALWAYS or f.name in self._given or getattr(self, f.name) is not None)} | self.other

    def update(self, values: dict) -> None:
        """Set the fields named in ``values`` (unknown names go to ``other``)."""
        known = {f.name for f in fields(self)} - {"other"}
        for key, value in values.items():
            if key in known:
                setattr(self, key, value)
            else:
                self.other[key] = value

    @property
    def scored(self) -> bool:
        """Whether the selection ranked samples by scores (else it needed none)."""
        return bool((self.scores or {}).get("scored"))

    def tracker_metrics(self) -> dict[str, float]:
        """The selection's numbers under the tracker's ``teach/`` names."""
        metrics = {"teach/ratio": self.ratio, "teach/subset_size": self.size, "teach/interval": self.interval,
                   "teach/cycle": self.cycle}
        metrics.update({f"teach/score_{k}": v for k, v in (self.scores or {}).items()})
        metrics.update({f"teach/{k}": getattr(self, k) for k in ("samples_scored", "score_age_mean", "score_age_max")
                        if getattr(self, k) is not None})
        repeat = self.repeatability or {}
        metrics.update({f"teach/repeat_{k}": repeat[k] for k in ("spearman", "top_overlap")
                        if repeat.get(k) is not None})
        return metrics


def records_of(result: dict) -> list[SelectionRecord]:
    """The selection records of a results.json dict (none for a fine-tuning run or a run without selections)."""
    return [SelectionRecord.from_dict(s) for s in result.get("selections") or ()]
