"""The probe suite: what a stage calls to measure its encoder's representation (``probe.kinds``).

    knn     top-1 of a k-nearest-neighbour vote on image features (probe_knn_top1)
    linear  top-1 of a linear classifier on image features (probe_linear_top1)
    depth   delta1 and abs_rel of a per-patch linear log-depth regression (probe_depth_delta1, probe_depth_abs_rel)

Metrics are fractions (accuracy, delta1 in [0, 1]), named ``probe_<kind>_<metric>`` in results.json. The suite
is engine-agnostic: the stage passes its device, precision context and the rank gather. Every rank encodes its
share of the images and gathers the rest; every rank then fits the probes on the same features, deterministically
(float64 on the CPU), so all ranks report the same numbers without waiting on each other (a failing fit fails on
every rank alike, never leaving the others in a collective).
"""

import logging
from contextlib import AbstractContextManager, nullcontext
from typing import Callable

import torch

from ..errors import ConfigError
from .data import embedded_roots, load_classification, load_depth
from .dense_depth import depth_probe
from .features import Gather, extract
from .knn import knn_accuracy
from .linear import linear_probe_accuracy, standardise

log = logging.getLogger(__name__)

CLASSIFICATION_KINDS = ("knn", "linear")
DEPTH_SPLITS = ("train", "test")


def metric_names(kinds: list[str]) -> list[str]:
    """The results.json keys the given probe kinds write."""
    names = {"knn": ["probe_knn_top1"], "linear": ["probe_linear_top1"],
             "depth": ["probe_depth_delta1", "probe_depth_abs_rel"]}
    return [name for kind in kinds for name in names[kind]]


class ProbeSuite:
    """Runs the probes of ``settings`` (the ``probe`` config node) on a model's rgb encoder at ``image_size``."""

    def __init__(self, settings, image_size: int, *, device: torch.device | str = "cpu",
                 autocast: Callable[[], AbstractContextManager] = nullcontext, rank: int = 0, world_size: int = 1,
                 gather: Gather = lambda x: x):
        self.settings = settings
        self.kinds = list(settings.kinds)
        self.image_size = image_size
        self.device = torch.device(device)
        self.autocast, self.rank, self.world_size, self.gather = autocast, rank, world_size, gather
        self._classification = self._depth = None

    # ------------------------------------------------------------------------------------------------- data
    def _roots(self) -> tuple:
        s = self.settings
        if s.root is not None and (s.depth_root is not None or "depth" not in self.kinds):
            return s.root, s.depth_root
        cls_root, nyu_root = embedded_roots(s.embedded)
        return s.root or cls_root, s.depth_root or nyu_root

    def prepare(self) -> None:
        """Decode the probe sets (once per suite; the embedded set is written first if needed) and check them
        against the settings: a stage calls it at set-up, so bad probe input stops a run before it trains."""
        if self._classification is not None or self._depth is not None:
            return
        cls_root, depth_root = self._roots()
        s, size = self.settings, self.image_size
        if set(self.kinds) & set(CLASSIFICATION_KINDS):
            train = load_classification(cls_root, s.train_split, size)
            val = load_classification(cls_root, s.val_split, size)
            if train.num_classes != val.num_classes:
                raise ConfigError(f"probe.root: {train.folder} has {train.num_classes} classes but {val.folder} has "
                                  f"{val.num_classes}; both splits need the same class folders")
            if "knn" in self.kinds and s.k > train.labels.numel():
                raise ConfigError(f"probe.k={s.k} exceeds the {train.labels.numel()} images of {train.folder} (the "
                                  "kNN memory bank); lower probe.k or use a larger probe set")
            self._classification = (train, val)
        if "depth" in self.kinds:
            self._depth = tuple(load_depth(depth_root, split, size) for split in DEPTH_SPLITS)

    def images_per_run(self) -> int:
        """Images one ``run`` encodes (the probe sets' sizes)."""
        self.prepare()
        sets = [*(self._classification or ()), *(self._depth or ())]
        return sum(s.images.shape[0] for s in sets)

    # ------------------------------------------------------------------------------------------------- probes
    def _features(self, model, images: torch.Tensor, patches: bool = False):
        return extract(model, images, self.settings.batch_size, self.device, self.rank, self.world_size,
                       self.gather, self.autocast, patches)

    def run(self, model) -> dict[str, float]:
        """Every probe of ``probe.kinds`` on ``model`` (a MultiMAE or MultiViT with an rgb input; put in eval mode
        by the caller) -> {probe_<kind>_<metric>: value}, the same on every rank."""
        self.prepare()
        s, found = self.settings, {}
        if self._classification is not None:
            train, val = self._classification
            bank, queries = self._features(model, train.images), self._features(model, val.images)
            if "knn" in self.kinds:
                scaled_bank, scaled_queries = standardise(bank, queries)
                found["probe_knn_top1"] = knn_accuracy(scaled_bank, train.labels, scaled_queries, val.labels,
                                                       train.num_classes, s.k, s.knn_temperature)
            if "linear" in self.kinds:
                found["probe_linear_top1"] = linear_probe_accuracy(bank, train.labels, queries, val.labels,
                                                                   train.num_classes, s.linear_steps,
                                                                   s.linear_weight_decay)
        if self._depth is not None:
            train, test = self._depth
            _, train_tokens = self._features(model, train.images, patches=True)
            _, test_tokens = self._features(model, test.images, patches=True)
            metrics = depth_probe(train_tokens, train.depth, train.valid, test_tokens, test.depth, test.valid,
                                  model.patch_size, s.depth_ridge)
            found.update({f"probe_depth_{k}": v for k, v in metrics.items()})
        return found
