"""``data.cache=memory``: decoded samples of a pretraining folder kept in RAM after their first read.

Decoding PNGs is most of a pretraining loader's work. :class:`MemoryCachedFolder` wraps a sample source
(:class:`~attent_vision.data.pretrain.source.SampleSource`, such as the folder layout's ``MultiModalFolder``) and
keeps what ``folder[i]`` returns ({modality: raw tensor}) after the first read, so later epochs and the scoring
and validation passes over the same folder skip the decoding. Crops, flips and masks are drawn afterwards by the
views (views.py) from (seed, epoch, index), so batches are bit-identical with and without the cache.

Per process, no shared memory: with ``data.num_workers=0`` one cache in the training process serves every view of
the folder (training, scoring, reference); with loader workers each worker process fills its own copy with the
samples it is dealt (a forked worker also starts with a copy-on-write view of what the training process held; a
spawned one starts empty), and the copies end with the workers, so they last only with
``data.persistent_workers=true``. Since batches are dealt to workers in a new order each epoch, a worker holds
all samples only after several epochs, and then each of ``num_workers`` workers holds a whole copy.

Bounded: at most one entry per sample, and ``cached_bytes`` is the sum of the stored tensors' ``nbytes``. Integer
tensors whose values fit in 0..255 (semseg ids and the ignore index) are stored as uint8 and widened back on read,
exactly. A sample that fails to load is not cached: it raises its DataError (or is skipped) on every read, as
without the cache. The cache is not run state: nothing of it goes into checkpoints.

Before a run, :func:`check_cache_fits` estimates the largest footprint (samples x bytes of one decoded sample x
the processes that may each hold a copy) and refuses, with one line, a cache that would not fit in memory.
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ...errors import ConfigError, DataError
from .source import SampleSource

log = logging.getLogger(__name__)

SAFE_SHARE = 0.8  # of the available memory the cache may take: the rest is for the model, batches and the system
PROBES = 8  # samples decoded (spread over the folder) to measure the bytes of one sample; the largest counts


def _stored(tensor: torch.Tensor) -> tuple[torch.Tensor, torch.dtype]:
    """(what the cache keeps, the dtype to give back). Integer labels in 0..255 shrink to uint8 (int64 semseg: 1/8
    of the bytes); a tensor that views a larger buffer is copied, so ``nbytes`` is what the entry really holds."""
    dtype = tensor.dtype
    if dtype in (torch.int16, torch.int32, torch.int64) and tensor.numel():
        low, high = int(tensor.min()), int(tensor.max())
        if 0 <= low and high <= 255:
            return tensor.to(torch.uint8), dtype
    if not tensor.is_contiguous() or tensor.untyped_storage().nbytes() > tensor.nbytes:
        tensor = tensor.clone(memory_format=torch.contiguous_format)
    return tensor, dtype


class MemoryCachedFolder(Dataset):
    """``folder`` with its decoded samples kept in this process's memory after their first read.

    ``cached[i]`` is ``folder[i]``: {modality: raw tensor}, equal in value and dtype. Callers must not modify the
    returned tensors in place (the views never do: every transform makes new tensors). Other attributes
    (``samples``, ``skipped``, ``modalities``, ``skip_bad_samples``, ...) are the folder's.
    """

    def __init__(self, folder: SampleSource):
        self.folder = folder
        self._entries: dict[int, dict[str, tuple[torch.Tensor, torch.dtype]]] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self.folder)

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("folder", "_entries", "_bytes"):  # not yet set (unpickling)
            raise AttributeError(name)
        return getattr(self.folder, name)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = int(index)  # a tensor or numpy index would hash by identity
        entry = self._entries.get(index)
        if entry is None:
            raw = self.folder[index]  # a DataError goes to the caller, and the sample stays uncached
            entry = {m: _stored(t) for m, t in raw.items()}
            self._entries[index] = entry
            self._bytes += sum(t.nbytes for t, _ in entry.values())
            return raw
        return {m: t if t.dtype == dtype else t.to(dtype) for m, (t, dtype) in entry.items()}

    def __getstate__(self) -> dict:
        # A spawned loader worker gets the folder, not this process's entries: it fills its own copy.
        return {"folder": self.folder, "_entries": {}, "_bytes": 0}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    @property
    def cached_samples(self) -> int:
        """How many samples this process holds (at most ``len(self)``)."""
        return len(self._entries)

    @property
    def cached_bytes(self) -> int:
        """Bytes this process holds: the sum of the stored tensors' ``nbytes``."""
        return self._bytes

    def stored(self, index: int) -> dict[str, torch.Tensor]:
        """The tensors kept for sample ``index`` as stored (uint8 labels included); KeyError when not cached."""
        return {m: t for m, (t, _) in self._entries[int(index)].items()}

    def sample_nbytes(self, probes: int = PROBES) -> int | None:
        """Bytes one cached sample takes: the largest of up to ``probes`` samples spread evenly over the folder
        (decoding them caches them). None when none of them loads (skip mode: the run reports those samples)."""
        n = len(self)
        sizes = []
        for index in sorted({round(k * (n - 1) / max(probes - 1, 1)) for k in range(min(probes, n))}):
            try:
                self[index]
            except DataError:
                continue
            sizes.append(sum(t.nbytes for t in self.stored(index).values()))
        return max(sizes, default=None)


@dataclass(frozen=True)
class CacheShare:
    """One folder's part of the footprint: ``samples`` of ``sample_bytes`` each, held by up to ``copies``
    processes (each of which may come to hold all of them)."""

    name: str  # "training", "validation"
    samples: int
    sample_bytes: int
    copies: int

    @property
    def nbytes(self) -> int:
        return self.samples * self.sample_bytes * self.copies

    def describe(self) -> str:
        processes = "process" if self.copies == 1 else "processes"
        return f"{self.samples} {self.name} samples x {format_bytes(self.sample_bytes)} x {self.copies} {processes}"


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().split()[0]
    except (OSError, IndexError):
        return None
    return int(text) if text.isdigit() else None  # cgroup v2 writes "max" for no limit


def _cgroup_folders() -> list[tuple[Path, str, str]]:
    """(folder, limit file, usage file) of this process's memory cgroup and its ancestors, innermost first
    (cgroup v2 and v1, from /proc/self/cgroup); folders that are not mounted here are simply not found later."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            base, limit, usage = Path("/sys/fs/cgroup"), "memory.max", "memory.current"
        elif "memory" in controllers.split(","):
            base, limit, usage = Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        folder = base / path.strip("/")
        found += [(f, limit, usage) for f in (folder, *folder.parents) if f == base or base in f.parents]
    return found


def _cgroup_headroom() -> int | None:
    """Bytes this process's memory cgroups may still take (the least limit - usage along the hierarchy):
    containers and SLURM jobs are limited below what /proc/meminfo shows. None without a limit."""
    headroom = None
    for folder, limit_file, usage_file in _cgroup_folders():
        limit, usage = _read_int(str(folder / limit_file)), _read_int(str(folder / usage_file))
        if limit is not None and usage is not None and limit < 2**60:  # v1 writes a huge number for no limit
            headroom = max(limit - usage, 0) if headroom is None else min(headroom, max(limit - usage, 0))
    return headroom


def available_memory_bytes() -> int | None:
    """Memory this process can still take: MemAvailable of /proc/meminfo (free and reclaimable), else free
    physical pages (os.sysconf), capped by the cgroup's headroom; None when the system says neither."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            pass
    headroom = _cgroup_headroom()
    if headroom is not None:
        available = headroom if available is None else min(available, headroom)
    return available


def check_cache_fits(shares: list[CacheShare]) -> int:
    """The cache's largest footprint (bytes, the sum over ``shares``), logged once; raises a one-line ConfigError
    when it exceeds ``SAFE_SHARE`` of :func:`available_memory_bytes`."""
    total = sum(s.nbytes for s in shares)
    parts = " + ".join(s.describe() for s in shares)
    available = available_memory_bytes()
    if available is not None and total > SAFE_SHARE * available:
        raise ConfigError(
            f"data.cache=memory would hold up to {format_bytes(total)} of decoded samples ({parts}), more than "
            f"{SAFE_SHARE:.0%} of the {format_bytes(available)} of memory available; set data.cache=none, use fewer "
            "data.num_workers (each worker holds its own copy), or use a smaller dataset")
    free = format_bytes(available) if available is not None else "unknown (not checked)"
    log.info("data.cache=memory: the decoded-sample cache may grow to %s (%s); memory available: %s",
             format_bytes(total), parts, free)
    return total
