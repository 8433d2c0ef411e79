"""The non-finite guard: a NaN or infinite loss or gradient never reaches the weights, and a run that keeps
producing them stops as ``diverged`` instead of finishing with NaN weights marked as a success.

Each optimizer step, after the backward passes and before the update, the guard checks the step's summed loss and
(unless fp16 loss scaling is active, where an overflowing gradient is routine and the scaler skips the step
itself) the total gradient norm. A bad step is skipped (no update); ``trainer.max_nonfinite_steps`` bad steps in a
row are tolerated, one more raises :class:`Divergence`. The check reads one flag on the host per step (a device
synchronisation); under DDP the ranks agree on it (a one-element all-reduce), so they skip and stop together.
"""

import math

import torch

DIVERGED_EXIT_CODE = 3  # the process exit status of a diverged single run (2 = bad input, 128 + n = signal n)


class Divergence(Exception):
    """Training produced non-finite values for more steps in a row than allowed."""

    def __init__(self, step: int, steps_in_a_row: int, what: str):
        self.step, self.steps_in_a_row, self.what = step, steps_in_a_row, what
        super().__init__(f"non-finite {what} at optimizer step {step} ({steps_in_a_row} step(s) in a row)")


def total_grad_norm(model: torch.nn.Module) -> torch.Tensor:
    """The 2-norm of all gradients (0-d), on their device: torch's get_total_norm where it exists (torch >= 2.6),
    else clip_grad_norm_ with an infinite bound (same norm, plus a multiplication by 1)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    get_total_norm = getattr(torch.nn.utils, "get_total_norm", None)
    if get_total_norm is not None:
        return get_total_norm(grads)
    return torch.nn.utils.clip_grad_norm_(model.parameters(), math.inf)


class NonFiniteGuard:
    def __init__(self, max_nonfinite_steps: int = 0):
        self.max_nonfinite_steps = max_nonfinite_steps
        self.in_a_row = 0
        self.skipped = 0

    def step_is_finite(self, loss_sum: torch.Tensor, model: torch.nn.Module, optimizer, scaler,
                       clip_grad: float | None, step: int, distributed: bool) -> bool:
        """Clip gradients (when ``clip_grad``) and decide whether this step may update the weights.

        loss_sum: this rank's summed loss of the step (0-d). Returns False for a step to skip; raises
        :class:`Divergence` past the allowed number of bad steps in a row."""
        check_grads = not scaler.is_enabled()
        if clip_grad or check_grads:
            scaler.unscale_(optimizer)
            # Clipping computes the norm anyway; without it, only the norm (no rescaling pass over the gradients).
            norm = (torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad) if clip_grad
                    else total_grad_norm(model))
        grads_ok = torch.isfinite(norm).to(loss_sum.device) if check_grads else torch.ones((), dtype=torch.bool,
                                                                                            device=loss_sum.device)
        flags = torch.stack([torch.isfinite(loss_sum.detach().float()), grads_ok]).to(torch.int32)
        if distributed:
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MIN)
        loss_ok, grads_ok = (bool(x) for x in flags.cpu())
        if loss_ok and grads_ok:
            self.in_a_row = 0
            return True
        self.in_a_row += 1
        self.skipped += 1
        if self.in_a_row > self.max_nonfinite_steps:
            raise Divergence(step, self.in_a_row, "loss" if not loss_ok else "gradient norm")
        return False
