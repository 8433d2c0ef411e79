"""Where a fine-tuning run is: the loop core's Progress plus the best epoch and the trivial baseline.

Checkpoints hold it as a plain dict (``to_state``), so files written while this class lived in engine/progress.py
load unchanged."""

from dataclasses import dataclass, field

from ..engine.progress import Progress


@dataclass
class FinetuneProgress(Progress):
    """Fine-tuning adds the best epoch so far and the trivial baseline (computed once, on the first evaluation)."""

    best: dict = field(default_factory=dict)
    baseline: dict = field(default_factory=dict)
