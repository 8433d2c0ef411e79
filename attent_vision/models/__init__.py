"""Models: MultiMAE for pretraining, MultiViT with task heads for fine-tuning, and weight conversion."""

from .factory import SIZES, create_model
from .losses import MultiMAELoss, TaskLoss

__all__ = ["SIZES", "create_model", "MultiMAELoss", "TaskLoss"]
