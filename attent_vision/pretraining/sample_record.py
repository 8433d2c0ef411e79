"""Which samples a run trained on: per selection, the chosen indices and the scores they were chosen by, and per
sample, how many epochs trained on it. What a data-selection study analyses, kept beside results.json in
``selections.npz`` (numpy arrays; N can be a million samples, too many for JSON):

    num_samples        ()      N, the training set's size (indices refer to the dataset's sorted sample order,
                               or, with learnability's holdout, to the kept samples: see folder_index)
    folder_index       (N,)    with learnability's holdout only: the dataset index of training sample i (the
                               holdout's samples are the dataset indices missing from it)
    train_counts       (N,)    epochs in which each sample was trained (a repeated sample counts each repeat)
    train_counts_complete ()   False when the run resumed from a checkpoint older than these counts
    selection_epochs   (S,)    the epoch (1 = first) each of the S selections was made for
    selection_<i>      (k_i,)  the sorted indices chosen by selection i (0-based, in selection_epochs' order)
    scores_<i>         (N,)    the scores selection i ranked (NaN = none yet, -inf = failed to load); absent for
                               strategies that use no scores (random)

results.json ``sample_selection`` names the file and summarises the counts.
"""

from pathlib import Path

import numpy as np
import torch

from ..atomic_files import atomic_write
from ..storage import writing

FILE_NAME = "selections.npz"


class TrainCounts:
    """Epochs in which each of ``num_samples`` samples was trained, counted when an epoch's pool is decided."""

    def __init__(self, num_samples: int):
        self.counts = torch.zeros(num_samples, dtype=torch.int64)
        # False when the run resumed from a checkpoint written before counts were kept: earlier epochs are missing
        self.complete = True

    def add_epoch(self, pool: torch.Tensor | None) -> None:
        """One epoch on ``pool`` (indices, repeats allowed; None = every sample)."""
        if pool is None:
            self.counts += 1
        else:
            self.counts += torch.bincount(pool.cpu().long(), minlength=self.counts.numel())

    def summary(self) -> dict:
        c = self.counts.double()
        return {"file": FILE_NAME, "num_samples": self.counts.numel(), "counts_complete": self.complete,
                "never_trained": int((self.counts == 0).sum()),
                "train_count_min": int(c.min()) if c.numel() else 0,
                "train_count_max": int(c.max()) if c.numel() else 0,
                "train_count_mean": round(float(c.mean()), 6) if c.numel() else 0.0}


def write_selections(path: Path, counts: TrainCounts, history: list[dict], chosen: list[torch.Tensor],
                     chosen_by: list[torch.Tensor | None], folder_index: list[int] | None = None) -> None:
    """Write the arrays above to ``path`` atomically (a temporary sibling renamed into place); ``folder_index``:
    the dataset index of each training sample when the training set is a subset of the dataset."""
    # A run resumed from a checkpoint written before selections were kept has records without indices: the indices
    # belong to the newest len(chosen) records.
    epochs = [r["epoch"] for r in history][len(history) - len(chosen):]
    arrays = {"num_samples": np.array(counts.counts.numel()), "train_counts": counts.counts.numpy().astype(np.int32),
              "train_counts_complete": np.array(counts.complete), "selection_epochs": np.array(epochs, dtype=np.int32)}
    if folder_index is not None:
        arrays["folder_index"] = np.asarray(folder_index, dtype=np.int64)
    for i, indices in enumerate(chosen):
        arrays[f"selection_{i}"] = indices.numpy().astype(np.int64)
        if chosen_by[i] is not None:
            arrays[f"scores_{i}"] = chosen_by[i].numpy().astype(np.float32)
    with writing(path), atomic_write(path) as f:
        np.savez_compressed(f, **arrays)


def read_selections(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a ``selections.npz``."""
    with np.load(path) as data:
        return {name: data[name] for name in data.files}
