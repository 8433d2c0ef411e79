"""Model predictions -> the integers the pretraining loader reads (docs/datasets.md's layout).

depth: a 16-bit PNG of relative depth per image, far = large, the farthest pixel 65535 (the loader reads value /
2**16 and standardises each map by its own robust statistics, so only the order and the ratios matter). Relative
depth models (DPT / MiDaS, Depth Anything) predict inverse depth up to scale and shift; it is inverted here so that
the stored map is depth, as MultiMAE's Omnidata labels are. The nearest pixel has disparity max(d); a pixel with
disparity d gets depth max(d) / d, capped at ``far_limit`` (sky and other pixels of disparity ~0 stay finite).

semseg: an 8-bit PNG of class ids in the model's own id2label order (COCO panoptic: 0..132), 255 = void (panoptic
mode: a pixel no kept segment covers). The loader turns ids >= model.semseg_num_classes, 255 included, into its
ignore index.
"""

import numpy as np
import torch

DEPTH_MAX = 2**16 - 1  # the farthest pixel of every depth map
VOID = 255  # semseg: no class


def depth_to_uint16(prediction: torch.Tensor, prediction_kind: str, far_limit: float) -> np.ndarray:
    """prediction: H x W float (disparity or depth, any scale) -> H x W uint16, far = large, max = 65535 (all 0 for a
    map without a positive value: nothing to order)."""
    values = torch.nan_to_num(prediction.float(), nan=0.0, posinf=0.0, neginf=0.0).clamp(min=0)
    if prediction_kind == "disparity":
        nearest = values.max()
        if nearest <= 0:
            return np.zeros(values.shape, dtype=np.uint16)
        values = 1.0 / (values / nearest).clamp(min=1.0 / far_limit)  # 1 at the nearest pixel .. far_limit
    farthest = values.max()
    if farthest <= 0:
        return np.zeros(values.shape, dtype=np.uint16)
    return (values / farthest * DEPTH_MAX).round().to(torch.int32).numpy().astype(np.uint16)


def semantic_to_uint8(labels: torch.Tensor) -> np.ndarray:
    """labels: H x W class ids (every pixel one) -> H x W uint8."""
    return labels.to(torch.int64).clamp(0, VOID).numpy().astype(np.uint8)


def panoptic_to_uint8(segmentation: torch.Tensor, segments: list[dict]) -> np.ndarray:
    """segmentation: H x W segment ids (-1 or an id no segment has = not covered); segments: [{"id", "label_id"}]
    -> H x W uint8 class ids, uncovered pixels VOID."""
    out = torch.full(segmentation.shape, VOID, dtype=torch.int64)
    for segment in segments:
        out[segmentation == segment["id"]] = int(segment["label_id"])
    return out.numpy().astype(np.uint8)
