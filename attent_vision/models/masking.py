"""Multi-modal token masking: a Dirichlet split of a fixed visible-token budget across input modalities.

Masks follow the release's convention: 1 = masked (hidden from the encoder), 0 = visible. Unlike the release,
the per-modality counts are repaired after rounding so that *exactly* ``num_encoded_tokens`` tokens are visible
in every sample, and no modality is asked for more visible tokens than it has.
"""

from dataclasses import dataclass

import torch


def _dirichlet(concentration: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Sample rows of a Dirichlet; zero concentration gives exactly zero mass. concentration: B x T -> B x T.

    torch's Gamma sampler takes no generator, so it runs on a forked RNG seeded from ``generator``: the draw is a
    pure function of the generator state and never disturbs the global RNG.
    """
    if generator is None:
        gamma = torch._standard_gamma(concentration.clamp_min(1e-12))
    else:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)  # CPU only: cheap, and restored on exit
            gamma = torch._standard_gamma(concentration.clamp_min(1e-12))
    gamma = torch.where(concentration > 0, gamma, torch.zeros_like(gamma))
    return gamma / gamma.sum(dim=1, keepdim=True).clamp_min(1e-30)


def split_budget(shares: torch.Tensor, budget: int, capacity: torch.Tensor) -> torch.Tensor:
    """Round ``shares * budget`` to integer counts that sum to ``budget`` and respect per-modality ``capacity``.

    shares: B x T (rows sum to 1), capacity: T (tokens per modality) -> counts B x T (long).
    Largest-remainder rounding: floor everything, then hand the missing units to the modalities with the largest
    fractional parts that still have room; overflow beyond a modality's capacity moves to the others the same way.
    """
    if budget > int(capacity.sum()):
        raise ValueError(f"cannot keep {budget} tokens visible out of {int(capacity.sum())}")
    exact = shares * budget
    counts = torch.minimum(exact.floor().long(), capacity.unsqueeze(0))
    missing = budget - counts.sum(dim=1)  # B, >= 0
    order = torch.argsort(exact - counts, dim=1, descending=True, stable=True)
    # Pass 1 hands one unit each to the largest remainders; pass 2 places what capacity clipping left over.
    for max_take in (1, budget):
        for rank in range(shares.shape[1]):
            task = order[:, rank : rank + 1]
            room = capacity[task] - counts.gather(1, task)
            take = torch.minimum(missing[:, None], room).clamp(0, max_take)
            counts.scatter_add_(1, task, take)
            missing = missing - take.squeeze(1)
    return counts


@dataclass(frozen=True)
class MaskSpec:
    """What a mask draw needs to know about the model: token counts per input modality and the visible budget."""

    tokens_per_task: dict[str, int]
    num_encoded_tokens: int
    alpha: float = 1.0
    sample_tasks_uniformly: bool = False

    def __post_init__(self):
        total = sum(self.tokens_per_task.values())
        if not 0 < self.num_encoded_tokens <= total:
            raise ValueError(
                f"num_encoded_tokens={self.num_encoded_tokens} must be in [1, {total}] (the model has {total} input "
                f"tokens: {self.tokens_per_task})"
            )

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Draw masks for a batch: returns {task: B x N_task bool} with True = masked.

        Every row has exactly ``num_encoded_tokens`` False entries across all tasks. Runs on the CPU (the masks are
        tiny) so that a draw is identical on every device.
        """
        tasks = list(self.tokens_per_task)
        num_tasks = len(tasks)
        concentration = torch.full((batch_size, num_tasks), float(self.alpha))
        if self.sample_tasks_uniformly and num_tasks > 1:
            # A uniformly chosen non-empty subset of modalities: draw a code in [1, 2^T - 1] and read its bits.
            code = torch.randint(1, 2**num_tasks, (batch_size,), generator=generator)
            chosen = (code[:, None] >> torch.arange(num_tasks)[None, :]) & 1
            concentration = concentration * chosen
        shares = _dirichlet(concentration, generator)
        capacity = torch.tensor([self.tokens_per_task[t] for t in tasks])
        counts = split_budget(shares, self.num_encoded_tokens, capacity)
        masks = {}
        for i, task in enumerate(tasks):
            noise = torch.rand(batch_size, self.tokens_per_task[task], generator=generator)
            rank = noise.argsort(dim=1).argsort(dim=1)  # a uniform random permutation rank per token
            masks[task] = rank >= counts[:, i : i + 1]
        return masks

    def sample_one(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Masks for a single sample: {task: N_task bool}. Used by datasets to fix masks per sample."""
        return {task: m[0] for task, m in self.sample(1, generator).items()}
