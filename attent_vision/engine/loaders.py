"""DataLoaders of both stages: one construction, so workers, pinning and seeding behave the same everywhere."""

import logging
import os

import torch
from torch.utils.data import DataLoader, Sampler

from ..data.skipping import collate_skipping_bad

log = logging.getLogger(__name__)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask under SLURM or taskset; else the machine's count). More
    loader workers than that only compete with the training process for the same cores."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def make_loader(dataset, batch_sampler: Sampler, data_cfg, device: torch.device, seed: int) -> DataLoader:
    """A loader over ``dataset`` whose batches (lists of keys) come from ``batch_sampler``. Samples that fail to
    load in skip mode are removed from the batch by :func:`collate_skipping_bad` and reported."""
    workers = min(data_cfg.num_workers, available_cpus())
    if workers < data_cfg.num_workers:
        log.info("data.num_workers=%d capped at the %d CPUs available", data_cfg.num_workers, workers)
    return DataLoader(
        dataset, batch_sampler=batch_sampler, num_workers=workers, collate_fn=collate_skipping_bad,
        pin_memory=data_cfg.pin_memory and device.type == "cuda",
        persistent_workers=data_cfg.persistent_workers and workers > 0,
        prefetch_factor=data_cfg.prefetch_factor if workers > 0 else None,
        # Worker seeds come from this generator, never from the global RNG, so creating a loader does not shift
        # the random stream the model uses (drop-path). Augmentation itself is seeded per key (seeds.py).
        generator=torch.Generator().manual_seed(seed),
    )


def shut_down_workers(loader: DataLoader) -> None:
    """Stop ``loader``'s persistent worker processes now. Left to the garbage collector, they idle on after the run
    (a trainer can outlive its run: a notebook, a test session) and their shutdown, with its join timeouts, lands
    in whatever runs next. torch has no public call for this; ``_iterator`` is where DataLoader keeps them."""
    iterator = getattr(loader, "_iterator", None)
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()
    loader._iterator = None


def to_device(batch: dict, device: torch.device, keys=None) -> dict:
    """The batch's tensors (those named in ``keys``, default all) on ``device``, non-blocking from pinned memory."""
    nb = device.type == "cuda"
    return {k: v.to(device, non_blocking=nb) for k, v in batch.items()
            if isinstance(v, torch.Tensor) and (keys is None or k in keys)}

