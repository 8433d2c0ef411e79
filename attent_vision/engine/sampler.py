"""The epoch batch sampler: which samples each rank trains on, in which micro-batches, this epoch.

One epoch's samples (the whole dataset or the teacher's subset) are shuffled with a seed derived from
(seed, epoch), identically on every rank, then cut into global batches of ``global_batch`` samples. Each global
batch is dealt to ranks round-robin; a rank left one short by a ragged last batch receives a weight-0 copy (it
keeps collective operations in step and changes nothing). Each rank's share is cut into micro-batches of at most
``micro_batch`` for gradient accumulation. The loss of every step is normalised by the *global* sample count, so
the gradient equals the single-process one for any number of ranks and accumulation steps. With ``drop_last``
(fine-tuning, whose losses are batch means) only full global batches are formed and the remainder waits for the
next epoch's shuffle.

Items are keys ``(index, epoch, weight)``: the datasets of both stages draw their augmentation from them
(data/pretrain/views.py, data/downstream/transforms.py), so a step's batch is a pure function of the keys.
"""

import math
from dataclasses import dataclass

import torch
from torch.utils.data import Sampler

from ..seeds import STREAM_ORDER, generator


@dataclass(frozen=True)
class StepShape:
    """One optimizer step as seen by one rank: how many samples in the global batch, and micro-batches here."""

    global_count: int
    micro_batches: int


def step_shapes(num_samples: int, global_batch: int, world_size: int, micro_batch: int,
                drop_last: bool = False) -> list[StepShape]:
    """The shape of every optimizer step of an epoch of ``num_samples`` samples. Pure, so the loop and the sampler
    agree without talking to each other."""
    shapes = []
    end = num_samples - num_samples % global_batch if drop_last else num_samples
    for start in range(0, end, global_batch):
        n = min(global_batch, num_samples - start)
        per_rank = math.ceil(n / world_size)
        shapes.append(StepShape(n, math.ceil(per_rank / micro_batch)))
    return shapes


def epoch_order(indices: torch.Tensor | None, num_samples: int, seed: int, epoch: int) -> torch.Tensor:
    """This epoch's sample order: a seeded permutation of ``indices`` (None = all samples)."""
    pool = torch.arange(num_samples) if indices is None else indices.cpu().long()
    return pool[torch.randperm(pool.numel(), generator=generator(seed, STREAM_ORDER, epoch))]


class EpochBatchSampler(Sampler):
    """Yields this rank's micro-batches of keys for one epoch. Call :meth:`set_epoch` before each epoch."""

    def __init__(self, *, num_samples: int, global_batch: int, micro_batch: int, seed: int, rank: int = 0,
                 world_size: int = 1, drop_last: bool = False):
        if global_batch % world_size != 0:
            raise ValueError(f"batch size {global_batch} is not divisible by the {world_size} ranks")
        self.num_samples = num_samples
        self.global_batch = global_batch
        self.micro_batch = micro_batch
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.set_epoch(0)

    def set_epoch(self, epoch: int, indices: torch.Tensor | None = None, start_step: int = 0) -> None:
        """Train on ``indices`` (None = all) in ``epoch``, skipping the first ``start_step`` optimizer steps
        (resuming mid-epoch)."""
        self.epoch = epoch
        self.order = epoch_order(indices, self.num_samples, self.seed, epoch)
        self.start_step = start_step

    def shapes(self) -> list[StepShape]:
        return step_shapes(self.order.numel(), self.global_batch, self.world_size, self.micro_batch, self.drop_last)

    def rank_share(self, step: int) -> list[tuple[int, int, float]]:
        """This rank's keys for global batch ``step``."""
        batch = self.order[step * self.global_batch : (step + 1) * self.global_batch].tolist()
        mine = [(i, self.epoch, 1.0) for i in batch[self.rank :: self.world_size]]
        per_rank = math.ceil(len(batch) / self.world_size)
        while len(mine) < per_rank:  # ragged last batch: a weight-0 stand-in keeps ranks in step
            mine.append((batch[0], self.epoch, 0.0))
        return mine

    def __iter__(self):
        for step in range(self.start_step, len(self.shapes())):
            share = self.rank_share(step)
            for start in range(0, len(share), self.micro_batch):
                yield share[start : start + self.micro_batch]

    def __len__(self) -> int:
        return sum(s.micro_batches for s in self.shapes()[self.start_step :])


class ShardedBatches(Sampler):
    """Batches of keys over ``indices`` for a no-grad pass (scoring, validation), sharded across ranks: rank r
    takes every world_size-th sample, so the ranks together visit each sample exactly once. ``epoch`` is passed
    through in the keys (it selects the random stream of the release's noisy scoring view), and so is ``draw``
    (which independent draw of each sample's masks and crop a pass of K draws asks for; 0 for a single draw)."""

    def __init__(self, indices: torch.Tensor, batch_size: int, *, rank: int = 0, world_size: int = 1, epoch: int = 0):
        self.batch_size = batch_size
        self.rank, self.world_size = rank, world_size
        self.set_pass(indices, epoch)

    def set_pass(self, indices: torch.Tensor, epoch: int = 0, draw: int = 0) -> None:
        """Visit ``indices`` next (a loader over this sampler picks the change up at its next iteration)."""
        self.indices = indices[self.rank :: self.world_size].tolist()
        self.epoch, self.draw = epoch, draw

    def __iter__(self):
        for start in range(0, len(self.indices), self.batch_size):
            yield [(i, self.epoch, 1.0, self.draw) for i in self.indices[start : start + self.batch_size]]

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)
