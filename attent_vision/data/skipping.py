"""The opt-in ``skip_bad_samples`` mode: samples that fail to load are left out of the batch, counted and reported
instead of stopping the run.

A dataset in this mode returns ``{'index': i, 'bad': message}`` for a sample whose files raise a DataError;
:func:`collate_skipping_bad` removes such items from the batch and passes their messages on, and
:class:`BadSampleLog` counts them over an epoch and reports the count and the first few messages (each names its
file). Problems found while scanning the folders (a missing partner file, an empty class folder) are collected in
the dataset's ``skipped`` list and logged once when the dataset is built.

What "one bad sample" means in the counts: one distinct sample (dataset index) per count, however often the run
meets it. A training run visits a sample in many epochs and a bad file fails the same way each time, so counting
visits would report one bad file as several (results.json ``bad_samples``). A sample fails at its first bad file,
so one bad file is one count (a sample with two is one count until the first is fixed). :func:`first_sightings` is
the rule, used per pass by :class:`BadSampleLog` and across the run (resumes included) by the progress record.
"""

import logging

from torch.utils.data import Dataset, default_collate

from ..errors import DataError
from .image_io import SKIP_HINT

log = logging.getLogger(__name__)


def collate_skipping_bad(items: list[dict]) -> dict:
    """default_collate, minus samples that failed to load: their messages travel in batch['bad'] and their
    indices in batch['bad_index'], so that callers can count and report them. A batch whose samples all failed
    holds only those two keys."""
    good = [it for it in items if "bad" not in it]
    batch = default_collate(good) if good else {}
    batch["bad"] = [it["bad"] for it in items if "bad" in it]
    batch["bad_index"] = [it["index"] for it in items if "bad" in it]
    return batch


def nothing_loaded(what: str, count: int, examples: list[str]) -> DataError:
    """The error for a pass in which every sample failed to load (skip mode): there is nothing to learn from, and
    a loss or metric over no samples would be a made-up number. ``what`` names a sample ("training sample of
    epoch 1"); ``examples`` are skip messages, each naming its file."""
    first = f", first: {examples[0].replace(f'; {SKIP_HINT}', '')}" if examples else ""
    return DataError(f"every {what} failed to load ({count} skipped{first}), so there is nothing to "
                     "learn from; fix or replace the files under data.root (the log names the skipped ones), or point "
                     "data.root at an intact copy of the dataset")


class SkippingDataset(Dataset):
    """Base class of the downstream datasets: ``__getitem__`` calls :meth:`load` and, when ``skip_bad_samples``
    is set, turns a DataError into a ``{'index', 'bad'}`` item (see the module docstring)."""

    skip_bad_samples: bool = False

    def load(self, index: int) -> dict:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        try:
            return self.load(index)
        except DataError as e:
            if not self.skip_bad_samples:
                raise
            return {"index": index, "bad": str(e)}

    def scan_problem(self, message: str) -> None:
        """A problem found while scanning: an error, or in skip mode an entry of ``skipped``."""
        if not self.skip_bad_samples:
            raise DataError(message)
        self.skipped.append(message)

    def log_skipped(self, where) -> None:
        if self.skipped:
            log.warning("%s: left out %d samples or folders while scanning (first: %s)", where, len(self.skipped),
                        " | ".join(self.skipped[:3]))


def first_sightings(seen, indices: list[int], messages: list[str]) -> tuple[list[int], list[str]]:
    """The bad samples of ``(indices, messages)`` (parallel lists, as in a batch's ``bad_index`` and ``bad``) that
    are not in ``seen`` (a collection of dataset indices): their indices and messages, each index once, in order.
    Counting only these counts each bad sample once (see the module docstring)."""
    seen = set(seen)
    new_indices, new_messages = [], []
    for index, message in zip(indices, messages, strict=True):
        index = int(index)
        if index not in seen:
            seen.add(index)
            new_indices.append(index)
            new_messages.append(message)
    return new_indices, new_messages


class BadSampleLog:
    """Counts the distinct samples skipped in a pass; ``report()`` logs the count and the first few messages.

    Usage: ``bad = BadSampleLog()``; per batch ``bad.update(batch)``; at the end of the pass ``bad.report(epoch)``.
    ``count`` and ``examples`` (the first ``keep`` messages) are what results files record.
    """

    def __init__(self, keep: int = 5):
        self.keep = keep
        self.count = 0
        self.examples: list[str] = []
        self.indices: set[int] = set()

    def update(self, batch: dict) -> None:
        messages = batch.get("bad", [])
        if "bad_index" in batch:  # (collate_skipping_bad always sets it)
            indices, messages = first_sightings(self.indices, batch["bad_index"], messages)
            self.indices.update(indices)
        self.count += len(messages)
        self.examples += messages[: max(self.keep - len(self.examples), 0)]

    def report(self, what: str = "epoch") -> None:
        if self.count:
            log.warning("%s: skipped %d samples that failed to load (first: %s)", what, self.count,
                        " | ".join(self.examples[:3]))
