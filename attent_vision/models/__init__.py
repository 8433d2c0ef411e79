"""Models: MultiMAE for pretraining, MultiViT with task heads for fine-tuning, and weight conversion."""

from ..lazy_exports import lazy_exports

# Imported on first use: config checks read model names (factory.py) without importing torch.
__getattr__, __dir__ = lazy_exports(__name__, {"SIZES": ".factory", "create_model": ".factory",
                                               "MultiMAELoss": ".losses", "TaskLoss": ".losses"})
__all__ = sorted(__dir__())
