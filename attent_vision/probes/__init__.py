"""Representation probes: what a pretrained encoder's frozen features are good for, measured while it pretrains.

    suite.py        ProbeSuite: the probes of ``probe.kinds`` on a model, the same numbers on any number of ranks
    data.py         the labelled probe sets (ImageNet-S50-style images, NYUv2-style frames), decoded once
    features.py     frozen-encoder features, sharded over ranks in fixed chunks and gathered
    knn.py          k-nearest-neighbour accuracy (cosine, weighted votes)
    linear.py       a linear classifier (full-batch L-BFGS logistic regression)
    dense_depth.py  a per-patch linear depth regression (ridge) and its delta1

Engine-agnostic like teaching/: a stage hands the suite its model, device, precision and collectives.
"""

from ..lazy_exports import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {"ProbeSuite": ".suite", "metric_names": ".suite"})
__all__ = sorted(__dir__())
