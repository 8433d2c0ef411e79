"""Every random stream of a run, in one place.

A run has one seed (``trainer.seed``). Everything random about it is drawn from a generator seeded by
``derive_seed(seed, STREAM, ...)``: a purpose (the stream id below) plus the coordinates that make the draw unique
(an epoch, a sample index, an optimizer step). Draws therefore depend only on those numbers, never on worker
processes, ranks, interruptions or on what else consumed the global RNG, which is what makes runs reproducible and
resumed runs bit-identical to uninterrupted ones.

Stream ids are part of the results: changing one changes every run that uses it. Add new ones at the end.
"""

import random
from contextlib import contextmanager

import numpy as np
import torch

# Pretraining views (data/pretrain/views.py): crops, flips and token masks per (epoch, sample).
STREAM_TRAIN = 0  # training augmentation and masks
STREAM_FIXED = 1  # the deterministic view's fixed masks (validation, scoring)
STREAM_NOISY_SCORING = 2  # scoring under the training distribution (scoring_view=paper; refreshes of free scores)
# 3 is unused (kept so that the ids above and below keep their meaning).
STREAM_ORDER = 4  # each epoch's sample order (engine/sampler.py)
STREAM_SELECT = 5  # each selection's generator (teaching/teacher.py)
STREAM_FINETUNE_AUGMENT = 6  # fine-tuning augmentation per (epoch, sample)
STREAM_MIXUP = 7  # fine-tuning mixup/cutmix per optimizer step
STREAM_REFRESH = 8  # tie-breaking among equally stale scores before a refresh (teaching/refresh.py)
STREAM_REFERENCE = 9  # the learnability reference model: its weights, sample order and augmentation
STREAM_SHARED_MASK = 10  # one token-mask pattern per (selection epoch, draw) for every scored sample
STREAM_REPEAT = 11  # which samples a selection's repeatability check scores twice (teaching/repeatability.py)
STREAM_RS2 = 12  # RS2 random: the permutations its subsets are consecutive slices of (strategies/rs2.py)
STREAM_HOLDOUT = 13  # which training samples the learnability reference model's holdout takes


def derive_seed(*parts: int) -> int:
    """Mix non-negative integers into one 63-bit seed (numpy's SeedSequence hashing)."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & (2**63 - 1)


def generator(*parts: int) -> torch.Generator:
    """A CPU torch.Generator seeded by ``derive_seed(*parts)``."""
    return torch.Generator().manual_seed(derive_seed(*parts))


@contextmanager
def seeded_global_rngs(seed: int):
    """Run a block that draws from the *global* RNGs (Python's ``random``, NumPy's, torch's CPU generator), as
    library transforms do (timm's crops, its Mixup), with all three seeded from ``seed``; restore them on exit, so
    the block neither depends on nor disturbs the rest of the run (CUDA generators are never touched)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.default_generator.manual_seed(seed)  # the CPU generator only: fork_rng restores nothing else
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
