"""What one split of a pretraining dataset offers the rest of the run: the :class:`SampleSource` interface.

A pretraining dataset kind (kinds/, config key ``data.name``) turns a split into a sample source; the views
(views.py) crop, flip and mask its samples, ``data.cache=memory`` keeps them decoded (memory_cache.py), the
checkpoints fingerprint its files (data/fingerprint.py) and results.json counts what it left out. The folder layout
(folder.py, ``MultiModalFolder``) is one implementation; a dataset in a format of its own implements these few
members and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # the config checks import the kinds, which name this interface, without importing torch
    import torch


@runtime_checkable
class SampleSource(Protocol):
    """One split of a pretraining dataset, sample by sample.

    Required:
        ``len(source)``: its N samples, fixed for the run (the teacher keeps one score per sample).
        ``source[i]`` (0 <= i < N): {modality: raw tensor} for each modality the source was asked for: rgb uint8
            3 x H x W, depth float32 1 x H x W (relative depth), semseg int64 H x W (class ids, 255 = ignore), with
            one H x W across modalities. Deterministic: the same i gives the same tensors (the views draw crops,
            flips and masks from (seed, epoch, index)). A sample that cannot be read raises DataError naming it.
        ``skip_bad_samples``: True lets the views turn such a DataError into a skipped, counted item (the user's
            ``data.skip_bad_samples``); False stops the run with it.
        ``skipped``: messages about samples left out before the run (while scanning); [] when none were.
    Optional:
        ``samples`` (one entry per sample naming its files: a Path, a tuple, list or dict of Paths, or an object
        with a ``paths`` dict) with ``root`` (what those paths are relative to): checkpoints then record the files'
        fingerprint, a resume on changed data is refused, and learnability's reference model can be cached. A
        source without them is resumed unchecked and its reference model is trained in every run.
    With ``data.num_workers > 0`` loader workers get a copy of the source (forked, or pickled when spawned): keep
    it picklable and open files lazily.
    """

    skip_bad_samples: bool
    skipped: list[str]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]: ...


REQUIRED = ("__len__", "__getitem__", "skip_bad_samples", "skipped")


def check_sample_source(source: object, kind: str) -> SampleSource:
    """``source`` if it has the members every reader needs; else a one-line TypeError for the kind's author."""
    missing = [member for member in REQUIRED if not hasattr(source, member)]
    if missing:
        raise TypeError(f"pretraining dataset '{kind}': folder() returned a {type(source).__name__} without "
                        f"{missing}; implement the SampleSource interface (attent_vision/data/pretrain/source.py)")
    return source
