"""The scoring pass: one inference-mode sweep that gives samples a fresh score, sharded across ranks and gathered.

It computes the per-sample per-task losses and nothing else (no per-task sums, no figures), under inference mode (no
autograd bookkeeping at all) and the stage's precision (bf16 autocast on CUDA by default).
"""

from typing import Callable, Iterable

import torch

Gather = Callable[[torch.Tensor], torch.Tensor]


@torch.inference_mode()
def run_scoring_pass(batches: Iterable[dict], per_task_fn: Callable[[dict], torch.Tensor], expected: torch.Tensor,
                     gather: Gather, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Score this rank's share of the ``expected`` samples and gather every rank's scores.

    batches: this rank's batches, dicts holding 'index' (B long) and optionally 'bad_index' (samples that failed to
    load and were skipped; they score -inf, which keeps them out of selections); per_task_fn(batch) -> B x T
    losses; gather: concatenates a 1-D tensor across ranks (the identity in one process). Returns (indices M,
    losses M x T) on every rank, M = len(expected) (distinct indices), after checking that each was scored once.
    """
    indices, values, tasks = [], [], None
    bad = []
    for batch in batches:
        if batch.get("index") is not None and len(batch["index"]):
            v = per_task_fn(batch).float().to(device)
            v = v.reshape(v.shape[0], -1)
            tasks = v.shape[1]
            values.append(v)
            indices.append(batch["index"].to(device))
        if batch.get("bad_index"):
            bad.extend(batch["bad_index"])
    # The task count is known only from a scored batch; every rank agrees on it through the gathered sizes.
    tasks_here = torch.tensor([tasks or 0], device=device)
    tasks = int(gather(tasks_here).max()) or 1
    if bad:
        indices.append(torch.tensor(bad, device=device))
        values.append(torch.full((len(bad), tasks), float("-inf"), device=device))
    local_idx = torch.cat(indices) if indices else torch.empty(0, dtype=torch.long, device=device)
    local_val = torch.cat(values) if values else torch.empty(0, tasks, device=device)
    all_idx, all_val = gather(local_idx), gather(local_val.reshape(-1)).view(-1, tasks)
    if not torch.equal(all_idx.sort().values, expected.to(all_idx.device).sort().values):
        raise RuntimeError(f"the scoring pass returned {all_idx.numel()} scores for {expected.numel()} samples, not "
                           "one per sample asked for; the scoring sampler is inconsistent")
    return all_idx, all_val
