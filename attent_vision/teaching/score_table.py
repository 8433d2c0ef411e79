"""The score table: each sample's newest per-task losses, the ones before them, and how old they are.

Losses come from a scoring pass or, with ``score_source=training``, from the training steps themselves. The
previous losses are the history the ``progress`` score reads. The table lives on the training device so that
recording training-step losses never forces a host synchronisation.
"""

import torch


class ScoreTable:
    """current, previous: N x T float per-task losses (NaN = none yet, -inf = failed to load in a scoring pass:
    never selected); step: N long, the optimizer step at which ``current`` was recorded (-1 = never)."""

    def __init__(self, num_samples: int, num_tasks: int = 1, device: torch.device | str = "cpu"):
        self.current = torch.full((num_samples, num_tasks), float("nan"), device=device)
        self.previous = torch.full_like(self.current, float("nan"))
        self.step = torch.full((num_samples,), -1, dtype=torch.long, device=device)

    def __len__(self) -> int:
        return self.current.shape[0]

    @property
    def num_tasks(self) -> int:
        return self.current.shape[1]

    def record(self, indices: torch.Tensor, losses: torch.Tensor, step: int, keep: torch.Tensor | None = None) -> None:
        """Write per-task ``losses`` (B x T, or B when T = 1) for samples ``indices`` (B), as seen at optimizer
        ``step``; the values they replace become the samples' previous ones, unless no optimizer step separates
        the two (a refresh right after the sample's training step): then the new value only replaces the current
        one, so the history measures learning, not a re-measurement. Entries where ``keep`` (B bool) is False leave
        the table unchanged. No boolean indexing, so no host synchronisation on CUDA."""
        device = self.current.device
        indices = indices.to(device)
        losses = losses.detach().to(self.current).reshape(indices.numel(), self.num_tasks)
        old = self.current[indices]
        learnt_since = (self.step[indices] < step)[:, None]
        previous = torch.where(learnt_since, old, self.previous[indices])
        steps = torch.full_like(indices, step)
        if keep is not None:
            keep = keep.to(device)
            losses = torch.where(keep[:, None], losses, old)
            previous = torch.where(keep[:, None], previous, self.previous[indices])
            steps = torch.where(keep, steps, self.step[indices])
        self.previous[indices] = previous
        self.current[indices] = losses
        self.step[indices] = steps

    def merge(self, gather) -> None:
        """Combine the tables of all ranks, keeping each sample's most recent values. Under DDP every rank records
        only the training losses of its own shard; ``gather`` concatenates a 1-D tensor across ranks (rank order)."""
        n, t = self.current.shape
        steps = gather(self.step).view(-1, n)
        newest = steps.argmax(dim=0)  # ranks x N -> N: the rank holding each sample's newest values
        pick = lambda x: gather(x.reshape(-1)).view(-1, n, t)[newest, torch.arange(n, device=newest.device)]  # noqa: E731
        self.current, self.previous = pick(self.current).contiguous(), pick(self.previous).contiguous()
        self.step = steps.gather(0, newest[None])[0].contiguous()

    def failed(self) -> torch.Tensor:
        """N bool (CPU): samples that could not be loaded in the last scoring pass (skip_bad_samples)."""
        return torch.isneginf(self.current.detach()).any(dim=1).cpu()

    def state_dict(self) -> dict:
        return {"current": self.current.cpu().clone(), "previous": self.previous.cpu().clone(),
                "step": self.step.cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        if "values" in state:  # a checkpoint from before per-task scores: one objective value per sample
            state = {"current": state["values"][:, None], "previous": torch.full_like(state["values"][:, None],
                     float("nan")), "step": state["step"]}
        if tuple(state["current"].shape) != tuple(self.current.shape):
            raise ValueError(f"score table has {tuple(state['current'].shape)} (samples, tasks) but this run has "
                             f"{tuple(self.current.shape)}")
        self.current.copy_(state["current"])
        self.previous.copy_(state["previous"])
        self.step.copy_(state["step"])


def for_selection(scores: torch.Tensor) -> torch.Tensor:
    """CPU copy of N scores with unscored samples (NaN) ranked first (+inf would break softmax, so they get the
    largest finite score plus one): a sample the learner has not been judged on is presumed informative. Failed
    samples (-inf) stay -inf; the teacher leaves them out before selecting."""
    values = scores.detach().float().cpu()
    seen = torch.isfinite(values)
    if not bool(seen.any()):
        return torch.where(torch.isneginf(values), values, torch.zeros_like(values))
    return torch.where(torch.isnan(values), values[seen].max() + 1.0, values)


# Bins of the score histogram in each selection record: enough to show the shape, small enough for results.json.
HISTOGRAM_BINS = 20


def score_histogram(scores: torch.Tensor, bins: int = HISTOGRAM_BINS) -> dict[str, list] | None:
    """What the teacher saw: ``bins`` counts of the finite scores (N) over equal-width bins from their minimum to
    their maximum, and the bins + 1 edges; None when no score is finite. For the selection record (the report's
    score-histogram plot)."""
    v = scores.detach().float().cpu()
    v = v[torch.isfinite(v)]
    if v.numel() == 0:
        return None
    counts, edges = torch.histogram(v, bins=bins)
    return {"counts": [int(c) for c in counts.tolist()], "edges": [float(f"{e:.7g}") for e in edges.tolist()]}


def score_stats(scores: torch.Tensor) -> dict[str, float]:
    """Summary of the finite scores (N) for the selection record."""
    v = scores.detach().float().cpu()
    v = v[torch.isfinite(v)]
    if v.numel() == 0:
        return {"scored": 0}
    q = torch.quantile(v, torch.tensor([0.1, 0.5, 0.9]))
    return {"scored": int(v.numel()), "mean": float(v.mean()), "std": float(v.std()) if v.numel() > 1 else 0.0,
            "min": float(v.min()), "p10": float(q[0]), "median": float(q[1]), "p90": float(q[2]),
            "max": float(v.max())}
