"""Views of a folder dataset as model batches: augmented for training, deterministic for scoring and validation.

Everything random about a sample (its crop, flip and token masks) is a pure function of (seed, epoch, index),
so a run is reproducible regardless of worker processes, ranks or interruptions. Samplers pass keys
``(index, epoch, weight)``; ``weight`` is 0 for padding that keeps ranks in step (see engine/sampler.py).
"""

import torch
from torch.utils.data import Dataset

from ...errors import DataError
from ...models.masking import MaskSpec
from ...seeds import STREAM_FIXED, STREAM_TRAIN, derive_seed
from .folder import MultiModalFolder
from .transforms import center_box, crop_resize, sample_crop, to_model_inputs


class PretrainView(Dataset):
    """Model-ready samples of a :class:`MultiModalFolder`.

    Args:
        folder: the raw dataset.
        image_size: output side S.
        augment: random-resized crop + flip (training, the release's noisy scoring) or the centred square.
        mask_spec: when given, each item carries token masks drawn for that sample ({task: N bool}, True = hidden);
            with ``augment=False`` they depend on (seed, index) only, so validation and scoring masks are fixed.
        stream: which random stream the keys' epoch indexes (training or the release's noisy scoring).

    Item: {'index': int, 'weight': float, 'rgb': 3xSxS, 'depth': 1xSxS, 'semseg': (S/4)x(S/4) long,
    'masks': {task: N bool}}. With ``skip_bad_samples``, a sample that fails to load becomes {'index', 'bad'}
    and :func:`collate_skipping_bad` removes it from the batch and reports its path.
    """

    def __init__(
        self,
        folder: MultiModalFolder,
        *,
        image_size: int,
        augment: bool,
        seed: int,
        mask_spec: MaskSpec | None = None,
        crop_scale=(0.2, 1.0),
        crop_ratio=(3 / 4, 4 / 3),
        hflip_prob: float = 0.5,
        semseg_stride: int = 4,
        stream: int = STREAM_TRAIN,
    ):
        self.folder = folder
        self.image_size = image_size
        self.augment = augment
        self.seed = seed
        self.mask_spec = mask_spec
        self.crop_scale, self.crop_ratio, self.hflip_prob = crop_scale, crop_ratio, hflip_prob
        self.semseg_stride = semseg_stride
        self.stream = stream if augment else STREAM_FIXED

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, key) -> dict:
        index, epoch, weight = (key, 0, 1.0) if isinstance(key, int) else key
        try:
            raw = self.folder[index]
        except DataError as e:
            if not self.folder.skip_bad_samples:
                raise
            return {"index": index, "bad": str(e)}
        epoch_part = epoch if self.augment else 0
        sample_seed = derive_seed(self.seed, self.stream, epoch_part, index)
        h, w = next(iter(raw.values())).shape[-2:]
        if self.augment:
            box, flip = sample_crop(h, w, self.crop_scale, self.crop_ratio, self.hflip_prob, sample_seed)
        else:
            box, flip = center_box(h, w), False
        item = to_model_inputs(crop_resize(raw, box, self.image_size, flip), self.semseg_stride)
        item["index"] = index
        item["weight"] = float(weight)
        if self.mask_spec is not None:
            generator = torch.Generator().manual_seed(derive_seed(sample_seed, 1))
            item["masks"] = self.mask_spec.sample_one(generator)
        return item
