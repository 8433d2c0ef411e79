"""Where a run is: the typed record that checkpoints save and resumed runs continue from. A stage that keeps more
extends it (pretraining/work.py's PretrainProgress, finetuning/progress.py's FinetuneProgress)."""

from dataclasses import asdict, dataclass, field, fields

from ..data.skipping import first_sightings


@dataclass
class Progress:
    """Counters and records of a run, saved in every checkpoint (as a plain dict) and restored on resume.

    ``epoch`` counts completed epochs; ``step_in_epoch`` the optimizer steps already done in the current one (both
    0 at an epoch boundary), so a checkpoint taken mid-epoch resumes at the next step.
    """

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    samples_seen: int = 0
    wall_s: float = 0.0  # wall time of earlier invocations of this run (resumed runs add theirs)
    bad_samples: int = 0  # distinct samples that failed to load and were skipped (data.skip_bad_samples)
    bad_examples: list[str] = field(default_factory=list)  # the first few of their messages
    bad_indices: list[int] = field(default_factory=list)  # their training-set indices: each counts once per run
    initial: dict = field(default_factory=dict)  # validation metrics at initialisation
    history: list[dict] = field(default_factory=list)  # one entry per completed epoch
    epoch_sums: list[float] | None = None  # the current epoch's training-loss sums (mid-epoch checkpoints)
    timers: dict[str, float] = field(default_factory=dict)  # seconds per phase so far
    exit_code: int = 0  # 128 + signal of the signal that stopped the run, 3 when it diverged, else 0
    diverged: dict | None = None  # {"step", "what"} of the non-finite step that stopped the run

    def to_state(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> "Progress":
        """Restore from a checkpoint; keys this version does not know are ignored, missing ones keep defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in state.items() if k in known})

    def record_bad(self, messages: list[str], indices: list[int], keep: int = 5) -> None:
        """Count the samples of ``(indices, messages)`` (an epoch's skipped ones) not met before in this run: one
        bad file is one bad sample, however many epochs and resumes meet it (data/skipping.py)."""
        new_indices, new_messages = first_sightings(self.bad_indices, indices, messages)
        self.bad_indices += new_indices
        self.bad_samples += len(new_indices)
        self.bad_examples = (self.bad_examples + new_messages)[:keep]
