"""What a training stage supplies to the loop core (engine/loop.py): the contract between them.

A stage subclasses :class:`~attent_vision.engine.loop.Trainer`; ``setup`` must set ``self.model`` (on the
device), ``self.train_dataset`` (items keyed by ``(index, epoch, weight)``, see engine/sampler.py) and
``self.num_epochs``; ``build_optimization`` and ``step_loss`` are required; every other hook has a default.
A hook that runs a whole run of its own (learnability's reference model) and is stopped inside it raises
:class:`StoppedInHook`.
"""

import torch

from .progress import Progress
from .run_identity import OUTSIDE_THE_COMPUTATION
from .sampler import StepShape


class StoppedInHook(Exception):
    """Raised by a stage hook whose own work was stopped by a signal or ``trainer.stop_after_steps`` after saving
    a checkpoint of its own (learnability's reference model, a run inside the run: pretraining/reference_stage.py).
    The stage's state is then half-way through the hook, so the core saves no checkpoint: the run ends as
    interrupted, and a rerun resumes from its last checkpoint (and the hook's work from its own)."""


class StageHooks:
    stage = ""  # pretrain | finetune: results.json "stage"
    # Config keys (dotted, or whole sections) a resumed run may change; every other key must equal the checkpoint's:
    # those outside the computation (engine/run_identity.py), the user's own keys (``extra``: labels, which the
    # report still tells apart) and ``extensions``: modules are code, like the package's own, which a resume does
    # not compare either (what they register is chosen by keys that must match: teaching.score, task.kind, ...),
    # and checkpoints written before the key existed lack it. A stage adds its own: what runs after training or only
    # at its start.
    resume_may_differ: tuple[str, ...] = OUTSIDE_THE_COMPUTATION + ("extra", "extensions")
    progress_type = Progress  # the typed progress record (a stage may extend it)
    drop_last = False  # full global batches only (batch-mean losses); else a short last batch
    evaluate_at_start = False  # evaluate before the first step (the reference point of "it learned")
    train_metric_names: list[str] = []  # per-sample statistics ``step_loss`` sums after the objective
    # Evaluation metrics are named <prefix>_<name> (val_loss, val_top1, ...): the newest of each prefix is the
    # run's ``final``, and the tracker logs them as <prefix>/<name>.
    metric_prefixes: tuple[str, ...] = ("val_",)

    def setup(self) -> None:
        raise NotImplementedError

    def epoch_size(self, epoch: int) -> int:
        """Samples trained on in ``epoch`` (the teacher's plan in pretraining)."""
        return self.num_train

    def build_optimization(self):
        """(optimizer, scheduler with ``step_update``) for ``self.total_steps`` steps."""
        raise NotImplementedError

    def epoch_pool(self, epoch: int, resuming: bool) -> torch.Tensor | None:
        """The samples of ``epoch`` (None = all); ``resuming``: continuing the epoch from a mid-epoch checkpoint."""
        return None

    def step_loss(self, batch: dict, shape: StepShape) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to backpropagate, statistics row [weight sum, objective sum, *train_metric_names sums]), the sums
        weighted by each sample's weight (0 for padding), so that row[1:] / row[0] are the batch means."""
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        return {}

    def evaluate_initial(self) -> dict[str, float]:
        """Metrics of the model before its first step (results.json "initial"); by default ``evaluate()``."""
        return self.evaluate()

    def epoch_label(self, epoch: int) -> str:
        return ""

    def training_done(self, epoch: int, metrics: dict) -> bool:
        """Whether training ends after ``epoch`` (0-based, just completed), before the planned ``num_epochs``: an
        early stop (the reference model's plateau). Asked on every rank after the epoch's evaluation, bookkeeping
        and record, with ``metrics`` = its training statistics (train_loss ..., summed over ranks) and evaluation
        metrics; every rank must answer alike. True: the core marks the epoch's history entry ``stopped_early``,
        saves a checkpoint and finishes the run as completed; a run resumed from that checkpoint trains no more.
        State the answer depends on belongs in ``extra_state``, so a resumed run answers as an uninterrupted one."""
        return False

    def after_epoch(self, epoch: int, last: bool, metrics: dict) -> None:
        """Stage bookkeeping after an epoch's evaluation (figures, best epoch)."""

    def extra_state(self) -> dict:
        """Stage entries of a checkpoint; called on every rank (collectives allowed), written by rank 0."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def data_fingerprint(self):
        """The training set's :class:`~attent_vision.data.fingerprint.DataFingerprint` (its files' paths, sizes and
        contents or times), which every checkpoint records and a resume compares before loading any state; None:
        unchecked. Called on rank 0 right after ``setup``."""
        return None

    def setting(self) -> dict:
        return {}

    def result_details(self) -> dict:
        return {}

    def save_outputs(self) -> None:
        """Rank 0, at a completed run's end: the stage's final weights file."""

    def describe(self) -> list[str]:
        return []

    def epoch_record(self, epoch: int) -> dict:
        """Stage fields of an epoch's history entry (pretraining: cycle, ratio, subset size)."""
        return {}
