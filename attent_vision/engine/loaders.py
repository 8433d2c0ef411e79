"""DataLoaders of both stages: one construction, so workers, pinning and seeding behave the same everywhere."""

import torch
from torch.utils.data import DataLoader, Sampler

from ..data.skipping import collate_skipping_bad


def make_loader(dataset, batch_sampler: Sampler, data_cfg, device: torch.device, seed: int) -> DataLoader:
    """A loader over ``dataset`` whose batches (lists of keys) come from ``batch_sampler``. Samples that fail to
    load in skip mode are removed from the batch by :func:`collate_skipping_bad` and reported."""
    workers = data_cfg.num_workers
    return DataLoader(
        dataset, batch_sampler=batch_sampler, num_workers=workers, collate_fn=collate_skipping_bad,
        pin_memory=data_cfg.pin_memory and device.type == "cuda",
        persistent_workers=data_cfg.persistent_workers and workers > 0,
        prefetch_factor=data_cfg.prefetch_factor if workers > 0 else None,
        # Worker seeds come from this generator, never from the global RNG, so creating a loader does not shift
        # the random stream the model uses (drop-path). Augmentation itself is seeded per key (seeds.py).
        generator=torch.Generator().manual_seed(seed),
    )


def to_device(batch: dict, device: torch.device, keys=None) -> dict:
    """The batch's tensors (those named in ``keys``, default all) on ``device``, non-blocking from pinned memory."""
    nb = device.type == "cuda"
    return {k: v.to(device, non_blocking=nb) for k, v in batch.items()
            if isinstance(v, torch.Tensor) and (keys is None or k in keys)}

