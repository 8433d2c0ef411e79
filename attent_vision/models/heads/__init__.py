"""Fine-tuning heads with the MultiMAE release's parameter names: ``cls`` (mean-pooled LayerNorm + linear),
``semseg`` (ConvNeXt adapter) and ``depth`` (DPT). Each takes the encoder's token sequence and where each input
modality's tokens sit in it (:class:`TokenSpans`)."""

from .cls import ClassificationHead
from .convnext_seg import ConvNeXtSegHead
from .dpt import DPTHead, fill_duplicate_registrations
from .spans import TokenSpans

__all__ = ["ClassificationHead", "ConvNeXtSegHead", "DPTHead", "TokenSpans", "fill_duplicate_registrations"]
