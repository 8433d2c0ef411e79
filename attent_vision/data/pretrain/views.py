"""Views of a pretraining dataset split as model batches: augmented for training, deterministic for scoring and
validation.

Everything random about a sample (its crop, flip and token masks) is a pure function of (seed, epoch, index,
draw), so a run is reproducible regardless of worker processes, ranks or interruptions. Samplers pass keys
``(index, epoch, weight)`` or ``(index, epoch, weight, draw)``; ``weight`` is 0 for padding that keeps ranks in step
(see engine/sampler.py); ``draw`` (default 0) numbers independent draws of one sample in one epoch: a scoring pass
averaged over K draws (teaching.score_draws) asks for draws 0..K-1, and its repeatability check for others.
"""

import torch
from torch.utils.data import Dataset

from ...errors import DataError
from ...models.masking import MaskSpec
from ...seeds import STREAM_FIXED, STREAM_SHARED_MASK, STREAM_TRAIN, derive_seed
from .source import SampleSource
from .transforms import center_box, crop_resize, sample_crop, to_model_inputs


class PretrainView(Dataset):
    """Model-ready samples of a sample source (:class:`SampleSource`: the folder layout's MultiModalFolder, or any
    dataset kind's split).

    Args:
        folder: the raw dataset.
        image_size: output side S.
        augment: random-resized crop + flip (training, the release's noisy scoring) or the centred square.
        mask_spec: when given, each item carries token masks drawn for that sample ({task: N bool}, True = hidden);
            with ``augment=False`` they depend on (seed, index) only, so validation and scoring masks are fixed.
        stream: which random stream the keys' epoch indexes (training or the release's noisy scoring).
        shared_masks: every sample of one (epoch, draw) gets the same token masks (teaching.shared_mask: a
            selection compares samples under one mask pattern, so the pattern's luck is not part of the ranking).
        subset: the folder indices this view shows, in order (None = all): a view of length len(subset) whose item
            i is folder sample subset[i] (its 'index' is i). The learnability holdout is carved out this way.

    Item: {'index': int, 'weight': float, 'rgb': 3xSxS, 'depth': 1xSxS, 'semseg': (S/4)x(S/4) long,
    'masks': {task: N bool}}. With ``skip_bad_samples``, a sample that fails to load becomes {'index', 'bad'}
    and :func:`collate_skipping_bad` removes it from the batch and reports its path.
    """

    def __init__(
        self,
        folder: SampleSource,
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
        shared_masks: bool = False,
        subset=None,
    ):
        self.folder = folder
        self.image_size = image_size
        self.augment = augment
        self.seed = seed
        self.mask_spec = mask_spec
        self.crop_scale, self.crop_ratio, self.hflip_prob = crop_scale, crop_ratio, hflip_prob
        self.semseg_stride = semseg_stride
        self.stream = stream if augment else STREAM_FIXED
        self.shared_masks = shared_masks
        self.subset = None if subset is None else [int(i) for i in subset]

    def __len__(self) -> int:
        return len(self.folder) if self.subset is None else len(self.subset)

    def folder_index(self, index: int) -> int:
        """The folder sample behind item ``index`` of this view."""
        return index if self.subset is None else self.subset[index]

    def __getitem__(self, key) -> dict:
        index, epoch, weight, draw = (key, 0, 1.0, 0) if isinstance(key, int) else (*key, 0)[:4]
        sample = self.folder_index(index)
        try:
            raw = self.folder[sample]
        except DataError as e:
            if not self.folder.skip_bad_samples:
                raise
            return {"index": index, "bad": str(e)}
        epoch_part = epoch if self.augment else 0
        # Seeded by the folder sample, not the view's position: a sample gets the same crops and masks in a run
        # with learnability's holdout carved out as in one without (paired comparisons stay paired). Draw 0
        # keeps the seeds of a single draw, so K=1 scores exactly as before the option existed.
        where = (epoch_part, sample) if draw == 0 else (epoch_part, sample, draw)
        sample_seed = derive_seed(self.seed, self.stream, *where)
        h, w = next(iter(raw.values())).shape[-2:]
        if self.augment:
            box, flip = sample_crop(h, w, self.crop_scale, self.crop_ratio, self.hflip_prob, sample_seed)
        else:
            box, flip = center_box(h, w), False
        item = to_model_inputs(crop_resize(raw, box, self.image_size, flip), self.semseg_stride)
        item["index"] = index
        item["weight"] = float(weight)
        if self.mask_spec is not None:
            # Shared masks depend on (epoch, draw) only, and change with the selection (its epoch) even in the
            # deterministic view, whose per-sample masks are fixed for the whole run.
            mask_seed = (derive_seed(self.seed, STREAM_SHARED_MASK, epoch, draw) if self.shared_masks
                         else derive_seed(sample_seed, 1))
            generator = torch.Generator().manual_seed(mask_seed)
            item["masks"] = self.mask_spec.sample_one(generator)
        return item
