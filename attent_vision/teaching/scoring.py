"""The scoring pass: one no-grad sweep that gives every training sample a fresh score, sharded across ranks."""

from typing import Callable, Iterable

import torch

from ..engine.distributed import DistEnv, all_gather_cat


@torch.no_grad()
def run_scoring_pass(
    batches: Iterable[dict], per_sample_fn: Callable[[dict], torch.Tensor], num_samples: int, dist: DistEnv
) -> tuple[torch.Tensor, torch.Tensor]:
    """Score this rank's share of the samples and gather every rank's scores.

    batches: dicts holding 'index' (B long) and optionally 'bad_index' (samples that failed to load and were
    skipped; they score -inf, which keeps them out of selections); per_sample_fn(batch) -> B scores. Returns
    (indices N, scores N) on every rank, after checking that each sample was scored exactly once.
    """
    device = dist.device
    indices, values = [], []
    for batch in batches:
        if batch.get("index") is not None and len(batch["index"]):
            values.append(per_sample_fn(batch).float().to(device))
            indices.append(batch["index"].to(device))
        if batch.get("bad_index"):
            indices.append(torch.tensor(batch["bad_index"], device=device))
            values.append(torch.full((len(batch["bad_index"]),), float("-inf"), device=device))
    local_idx = torch.cat(indices).to(device) if indices else torch.empty(0, dtype=torch.long, device=device)
    local_val = torch.cat(values).to(device) if values else torch.empty(0, device=device)
    all_idx, all_val = all_gather_cat(local_idx, dist), all_gather_cat(local_val, dist)
    counts = torch.bincount(all_idx.cpu(), minlength=num_samples)
    if counts.numel() != num_samples or not bool((counts == 1).all()):
        missing = int((counts == 0).sum())
        raise RuntimeError(f"scoring pass covered {num_samples - missing}/{num_samples} samples "
                           f"({int((counts > 1).sum())} more than once); the scoring sampler is inconsistent")
    return all_idx, all_val
