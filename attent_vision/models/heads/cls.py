"""Classification head (the release's ``LinearOutputAdapter``): mean over all tokens, LayerNorm, Linear.

Keys: ``norm.{weight,bias}``, ``head.{weight,bias}`` (registered as ``output_adapters.cls``).
"""

import torch
import torch.nn as nn


class ClassificationHead(nn.Module):
    """tokens B x N x D -> logits B x num_classes.

    ``mean_pooling=True`` averages all tokens, the global token included (as the release does); ``False`` reads the
    last (global) token. The linear layer starts tiny (trunc-normal 0.02 scaled by ``init_scale``, 0.001 in the
    reference) so that fine-tuning begins from near-uniform predictions and the pretrained features are not
    disturbed by large early gradients.
    """

    def __init__(self, dim: int, num_classes: int, *, mean_pooling: bool = True, init_scale: float = 0.001):
        super().__init__()
        self.mean_pooling = mean_pooling
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)
        with torch.no_grad():
            self.head.weight.mul_(init_scale)

    def forward(self, tokens: torch.Tensor, spans=None) -> torch.Tensor:
        x = tokens.mean(dim=1) if self.mean_pooling else tokens[:, -1]
        return self.head(self.norm(x))
