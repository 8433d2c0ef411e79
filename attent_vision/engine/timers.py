"""Wall-time accounting by phase: training compute, data waiting, scoring, evaluation, probes, checkpointing."""

import time
from contextlib import contextmanager

import torch

PHASES = ("train", "data_wait", "scoring", "eval", "probe", "checkpoint")


class PhaseTimer:
    """Accumulates seconds per phase. On CUDA, ``sync=True`` waits for queued kernels at phase boundaries so that
    GPU work is charged to the phase that issued it (used at epoch granularity, never per step)."""

    def __init__(self, device: torch.device, totals: dict[str, float] | None = None):
        self.device = device
        self.totals = {p: 0.0 for p in PHASES}
        self.totals.update(totals or {})

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextmanager
    def phase(self, name: str, sync: bool = False):
        if sync:
            self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            if sync:
                self._sync()
            self.totals[name] += time.perf_counter() - start

    def add(self, name: str, seconds: float) -> None:
        self.totals[name] += seconds

    def snapshot(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.totals.items()}

