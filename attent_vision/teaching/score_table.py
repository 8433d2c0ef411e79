"""The score table: one score per training sample and how old it is.

Scores are the sample's training objective (the weighted sum of its per-task losses), from a scoring pass or,
with ``score_source=training``, from the training steps themselves. The table lives on the training device so
that recording training-step losses never forces a host synchronisation.
"""

import torch


class ScoreTable:
    """values: N float (NaN = never scored, -inf = failed to load in a scoring pass: never selected); step: N long,
    the optimizer step at which each value was recorded (-1 = never)."""

    def __init__(self, num_samples: int, device: torch.device | str = "cpu"):
        self.values = torch.full((num_samples,), float("nan"), device=device)
        self.step = torch.full((num_samples,), -1, dtype=torch.long, device=device)

    def __len__(self) -> int:
        return self.values.numel()

    def record(self, indices: torch.Tensor, values: torch.Tensor, step: int, keep: torch.Tensor | None = None) -> None:
        """Write ``values`` (B) for samples ``indices`` (B), as seen at optimizer ``step``; entries where ``keep``
        (B bool) is False leave the table unchanged. No boolean indexing, so no host synchronisation on CUDA."""
        device = self.values.device
        indices = indices.to(device)
        values = values.detach().to(self.values)
        steps = torch.full_like(indices, step)
        if keep is not None:
            keep = keep.to(device)
            values = torch.where(keep, values, self.values[indices])
            steps = torch.where(keep, steps, self.step[indices])
        self.values[indices] = values
        self.step[indices] = steps

    def merge(self, gather) -> None:
        """Combine the tables of all ranks, keeping each sample's most recent value. Under DDP every rank records
        only the training losses of its own shard; ``gather`` concatenates a tensor across ranks (rank order)."""
        n = self.values.numel()
        values = gather(self.values).view(-1, n)
        steps = gather(self.step).view(-1, n)
        newest = steps.argmax(dim=0, keepdim=True)
        self.values = values.gather(0, newest)[0].contiguous()
        self.step = steps.gather(0, newest)[0].contiguous()

    def failed(self) -> torch.Tensor:
        """N bool (CPU): samples that could not be loaded in the last scoring pass (skip_bad_samples)."""
        return torch.isneginf(self.values.detach()).cpu()

    def for_selection(self) -> torch.Tensor:
        """CPU copy of the scores with never-scored samples ranked first (+inf would break softmax, so they get
        the largest finite score plus one): a sample the learner has not been judged on is presumed hard. Failed
        samples (-inf) stay -inf; the teacher leaves them out before selecting."""
        values = self.values.detach().float().cpu()
        seen = torch.isfinite(values)
        if not bool(seen.any()):
            return torch.where(torch.isneginf(values), values, torch.zeros_like(values))
        return torch.where(torch.isnan(values), values[seen].max() + 1.0, values)

    def stats(self) -> dict[str, float]:
        v = self.values.detach().float().cpu()
        v = v[torch.isfinite(v)]
        if v.numel() == 0:
            return {"scored": 0}
        q = torch.quantile(v, torch.tensor([0.1, 0.5, 0.9]))
        return {
            "scored": int(v.numel()),
            "mean": float(v.mean()),
            "std": float(v.std()) if v.numel() > 1 else 0.0,
            "min": float(v.min()),
            "p10": float(q[0]),
            "median": float(q[1]),
            "p90": float(q[2]),
            "max": float(v.max()),
        }

    def state_dict(self) -> dict:
        return {"values": self.values.cpu().clone(), "step": self.step.cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        if state["values"].numel() != self.values.numel():
            raise ValueError(
                f"score table has {state['values'].numel()} samples but the dataset has {self.values.numel()}"
            )
        self.values.copy_(state["values"])
        self.step.copy_(state["step"])
