"""A linear classifier on frozen features: multinomial logistic regression, fitted full-batch with L-BFGS.

Deterministic by construction (zero initialisation, full batch, float64, a fixed number of steps), so the same
features always give the same accuracy, on one process or many.
"""

import torch
import torch.nn.functional as F


def standardise(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Each tensor minus the training features' mean, divided by their std (per feature; float64)."""
    train = train.double()
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return [(x.double() - mean) / std for x in (train, *others)]


def fit_linear_classifier(x: torch.Tensor, y: torch.Tensor, num_classes: int, steps: int = 100,
                          weight_decay: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """x: N x D (standardised), y: N labels -> (weights D x C, bias C) minimising the mean cross-entropy plus
    ``weight_decay`` x |W|^2, by at most ``steps`` L-BFGS iterations."""
    weights = torch.zeros(x.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights, bias], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-10, tolerance_change=1e-12)

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weights + bias, y) + weight_decay * weights.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weights.detach(), bias.detach()


def linear_probe_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor,
                          num_classes: int, steps: int = 100, weight_decay: float = 1e-4) -> float:
    """Fit on (train_x N x D, train_y N), return the top-1 accuracy (fraction) on (val_x, val_y)."""
    train_x, val_x = standardise(train_x, val_x)
    weights, bias = fit_linear_classifier(train_x, train_y, num_classes, steps, weight_decay)
    return float(((val_x @ weights + bias).argmax(1) == val_y).double().mean())
