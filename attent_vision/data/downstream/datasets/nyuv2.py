"""NYUv2 (``data.name=nyuv2``): segmentation (40 classes) and depth on the prepared train/test splits
(data/downstream/nyuv2.py reads them; attent-prepare-nyuv2 writes them). Root: ``data.root`` or ``$NYUV2_ROOT``.
Depth is also an input modality (rgb-depth segmentation)."""

from . import DOWNSTREAM_DATASETS, DownstreamDataset, ReadRequest

TARGETS = {"semseg": "semseg", "depth": "depth"}  # task kind -> the modality holding its targets


def read_nyuv2(request: ReadRequest):
    from ..nyuv2 import NYUv2

    extra = [d for d in request.inputs if d != "rgb"]
    modalities = ["rgb", TARGETS[request.kind], *extra]
    skip = request.skip_bad_samples
    return (NYUv2(request.root, request.train_split, modalities, skip_bad_samples=skip),
            NYUv2(request.root, request.eval_split, modalities, skip_bad_samples=skip))


DOWNSTREAM_DATASETS.add("nyuv2", DownstreamDataset(
    splits={"semseg": ("train", "test"), "depth": ("train", "test")},
    read=read_nyuv2,
    description="NYUv2 indoor frames (rgb, metric depth, 40-class labels)",
))
