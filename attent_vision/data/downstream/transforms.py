"""Fine-tuning transforms: raw dataset items (uint8 images, int64 labels, depth in metres) -> model inputs and
targets.

Classification uses timm's ImageNet pipeline (``create_transform``: random-resized crop, flip, RandAugment, colour
jitter, random erasing; resize + centre crop for evaluation), the reference recipe's own code path. Dense tasks
(NYUv2 segmentation and depth) transform image and labels jointly, with one set of random parameters per sample:

- ``lsj`` (the reference segmentation recipe): flip; resize so the longer side is ``size`` times a random scale in
  ``scale_range`` (large-scale jitter, 0.1-2.0); colour jitter with probability ``jitter_prob``; pad to at least
  size x size (rgb 128, labels ignore, depth invalid); random size x size crop. Evaluation: longer side to ``size``,
  pad.
- ``short_side_crop`` (the reference depth recipe): resize the shorter side to ``size`` (times a scale in
  ``scale_range``, 1-1 by default), random crop, flip, colour jitter and grey-scale (``gray_prob``). Evaluation:
  shorter side to ``size``, centre crop.

Labels and depth are resized with nearest neighbour (never blended); padded and invalid pixels are excluded from
losses and metrics through the ignore index (255) and the ``valid`` mask.

Every output dict holds the model inputs (``rgb`` ImageNet-normalised; ``depth`` robust-standardised when depth is
an input) and ``target`` (cls: int label; semseg: int64 H x W; depth: float32 1 x H x W metres) with ``valid``
(bool 1 x H x W) for depth targets. Each task kind (finetuning/task_kinds/) picks its transform here.
"""

import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from ...seeds import STREAM_FINETUNE_AUGMENT, derive_seed, seeded_global_rngs
from ..normalize import IMAGENET_MEAN, IMAGENET_STD, robust_standardize_depth

SEG_IGNORE_INDEX = 255
RGB_PAD_VALUE = 128


def normalize_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 3 x H x W -> float ImageNet-normalised."""
    return TF.normalize(rgb.float() / 255.0, IMAGENET_MEAN, IMAGENET_STD)


def raw_rgb(item: dict) -> torch.Tensor:
    """The image of an item: NYUv2 calls it 'rgb', ImageNet-S50 'image'."""
    return item["rgb"] if "rgb" in item else item["image"]


def posterize_keeping_a_bit(img, bits_to_keep, **kwargs):
    """timm's posterize with at least one bit kept: timm's increasing-posterize RandAugment op asks for 0 bits at
    the top of its magnitude range (reached with magnitude noise, e.g. rand-m9-mstd0.5-inc1), which pillow >= 13
    rejects ("bits must be between or equal to 1 and 8"); 1 bit is the strongest posterize pillow allows."""
    from timm.data.auto_augment import posterize

    return posterize(img, max(1, bits_to_keep), **kwargs)


def guard_posterize(transform) -> int:
    """Point every posterize op of the RandAugment/AutoAugment stages inside ``transform`` (a torchvision Compose)
    at :func:`posterize_keeping_a_bit`; returns how many ops were changed."""
    from timm.data.auto_augment import posterize

    changed = 0
    for stage in getattr(transform, "transforms", []):
        ops = getattr(stage, "ops", [])
        for op in [o for policy in ops for o in (policy if isinstance(policy, (list, tuple)) else [policy])]:
            if getattr(op, "aug_fn", None) is posterize:
                op.aug_fn = posterize_keeping_a_bit
                changed += 1
    return changed


class ClassificationTransform:
    """{'image' uint8 3 x H x W, 'label'} -> {'rgb': 3 x S x S float, 'target': label} with timm's pipeline."""

    def __init__(self, *, train: bool, size: int, augment):
        from timm.data import create_transform

        a = augment
        self.transform = create_transform(
            size, is_training=train, scale=tuple(a.crop_scale), ratio=tuple(a.crop_ratio), hflip=a.hflip_prob,
            vflip=0.0, color_jitter=tuple(a.color_jitter[:3]) if a.color_jitter else None,
            auto_augment=a.auto_augment or None, interpolation=a.interpolation, re_prob=a.re_prob,
            crop_pct=a.crop_pct, mean=IMAGENET_MEAN, std=IMAGENET_STD,
        )
        guard_posterize(self.transform)

    def __call__(self, item: dict) -> dict:
        if "bad" in item:
            return item
        image = TF.to_pil_image(raw_rgb(item))
        return {"rgb": self.transform(image), "target": int(item["label"])}


class DenseTransform:
    """Joint transform for segmentation/depth items (see the module docstring).

    Args:
        train: random augmentation (True) or the deterministic evaluation view.
        size: output side S.
        target: the modality that is the target: 'semseg' (labels) or 'depth' (metres).
        valid_mask: also return ``valid``, the target's measured pixels (the dataset's mask, target > 0, not
            padding): the depth kind's losses and metrics count only those.
        in_domains: model inputs to produce (rgb, and depth for rgb-depth segmentation).
        augment: AugmentConfig (mode, scale_range, hflip_prob, color_jitter, jitter_prob).
    """

    def __init__(self, *, train: bool, size: int, target: str, in_domains, augment, valid_mask: bool = False):
        self.train, self.size, self.target, self.valid_mask = train, size, target, valid_mask
        self.in_domains = list(in_domains)
        self.mode = augment.mode
        self.scale_range = tuple(augment.scale_range)
        self.hflip_prob = augment.hflip_prob
        self.jitter_prob = augment.jitter_prob
        self.gray_prob = augment.gray_prob
        b, c, s, h = augment.color_jitter
        jitter = any(augment.color_jitter)
        self.jitter = T.ColorJitter(brightness=b, contrast=c, saturation=s, hue=h) if jitter else None

    def __call__(self, item: dict) -> dict:
        if "bad" in item:
            return item
        rgb = raw_rgb(item)
        dense = {k: item[k] for k in ("depth", "valid", "semseg") if k in item}
        if "depth" in dense and "valid" not in dense:
            dense["valid"] = dense["depth"] > 0
        rgb, dense = self._geometry(rgb, dense)
        if self.train and self.jitter is not None and float(torch.rand(())) < self.jitter_prob:
            rgb = self.jitter(rgb)
        if self.train and self.gray_prob > 0 and float(torch.rand(())) < self.gray_prob:
            rgb = TF.rgb_to_grayscale(rgb, num_output_channels=3)
        out = {"rgb": normalize_rgb(rgb)}
        if "depth" in self.in_domains:
            out["depth"] = robust_standardize_depth(dense["depth"], dense["valid"])
        out["target"] = dense[self.target]
        if self.valid_mask:
            out["valid"] = dense["valid"] & (dense[self.target] > 0)
        return out

    # ------------------------------------------------------------------------------------------- geometry
    def _geometry(self, rgb: torch.Tensor, dense: dict) -> tuple[torch.Tensor, dict]:
        H, W = rgb.shape[-2:]
        S = self.size
        if self.train and float(torch.rand(())) < self.hflip_prob:
            rgb, dense = TF.horizontal_flip(rgb), {k: TF.horizontal_flip(v) for k, v in dense.items()}
        ref = max(H, W) if self.mode == "lsj" else min(H, W)
        scale = S / ref
        if self.train:
            lo, hi = self.scale_range
            scale *= lo + (hi - lo) * float(torch.rand(()))
        new_hw = [max(1, round(H * scale)), max(1, round(W * scale))]
        rgb, dense = self._resize(rgb, dense, new_hw)
        if self.train or self.mode == "lsj":
            rgb, dense = self._pad_to(rgb, dense, S)
        h, w = rgb.shape[-2:]
        if self.train:
            top, left = int(torch.randint(0, h - S + 1, ())), int(torch.randint(0, w - S + 1, ()))
        else:
            top, left = (h - S) // 2, (w - S) // 2  # lsj: already S x S after padding; else a centre crop
        rgb = rgb[..., top : top + S, left : left + S]
        dense = {k: v[..., top : top + S, left : left + S] for k, v in dense.items()}
        return rgb, dense

    @staticmethod
    def _resize(rgb, dense, hw):
        if list(rgb.shape[-2:]) == hw:
            return rgb, dense
        rgb = TF.resize(rgb, hw, interpolation=InterpolationMode.BILINEAR, antialias=True)
        out = {}
        for k, v in dense.items():
            x = v.unsqueeze(0) if k == "semseg" else v  # semseg is H x W
            x = F.interpolate(x[None].float(), size=hw, mode="nearest-exact")[0]
            x = x.to(v.dtype)
            out[k] = x.squeeze(0) if k == "semseg" else x
        return rgb, out

    @staticmethod
    def _pad_to(rgb, dense, S):
        """Pad bottom/right to at least S x S: rgb grey, labels ignore, depth 0 and invalid."""
        h, w = rgb.shape[-2:]
        ph, pw = max(0, S - h), max(0, S - w)
        if not ph and not pw:
            return rgb, dense
        rgb = F.pad(rgb, (0, pw, 0, ph), value=RGB_PAD_VALUE)
        fill = {"semseg": SEG_IGNORE_INDEX, "depth": 0.0, "valid": False}
        return rgb, {k: F.pad(v, (0, pw, 0, ph), value=fill[k]) for k, v in dense.items()}


class TransformedDataset(torch.utils.data.Dataset):
    """A raw dataset seen through a transform (train and eval views share one raw dataset), addressed by the
    samplers' keys ``(index, epoch, weight)`` (a plain index also works).

    Library transforms draw from the global RNGs (timm's crops from Python's ``random``, torchvision's from torch),
    so with ``randomized`` each item is transformed under ``seeded_global_rngs(seed, epoch, index)``: its
    augmentation is a pure function of the key, whatever the worker, rank or interruption, and reruns and resumed
    runs see identical batches. Items gain ``index`` and ``weight`` (0 for padding).
    """

    def __init__(self, dataset, transform, *, seed: int = 0, randomized: bool = False):
        self.dataset, self.transform = dataset, transform
        self.seed, self.randomized = seed, randomized

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key) -> dict:
        # Keys of no-grad passes carry a fourth element, the draw (engine/sampler.py); fine-tuning has one draw.
        index, epoch, weight = (key, 0, 1.0) if isinstance(key, int) else key[:3]
        raw = self.dataset[index]
        if self.randomized:
            with seeded_global_rngs(derive_seed(self.seed, STREAM_FINETUNE_AUGMENT, epoch, index)):
                item = self.transform(raw)
        else:
            item = self.transform(raw)
        if "bad" not in item:
            item["index"], item["weight"] = index, float(weight)
        return item
