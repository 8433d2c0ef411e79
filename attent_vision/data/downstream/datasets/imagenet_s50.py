"""ImageNet-S50 (``data.name=imagenet_s50``): classification on its class folders, segmentation on the splits with
masks (data/downstream/imagenet_s.py reads both). Root: ``data.root`` or ``$IMAGENET_S50_ROOT``; rgb only."""

from . import DOWNSTREAM_DATASETS, DownstreamDataset, ReadRequest


def read_imagenet_s50(request: ReadRequest):
    from ..imagenet_s import ImageNetS50Classification, ImageNetS50Segmentation

    request.rgb_only()
    reader = {"cls": ImageNetS50Classification, "semseg": ImageNetS50Segmentation}[request.kind]
    skip = request.skip_bad_samples
    return (reader(request.root, request.train_split, skip_bad_samples=skip),
            reader(request.root, request.eval_split, skip_bad_samples=skip))


DOWNSTREAM_DATASETS.add("imagenet_s50", DownstreamDataset(
    splits={"cls": ("train", "validation"), "semseg": ("train-semi", "validation")},
    read=read_imagenet_s50,
    description="ImageNet-S50 (50 ImageNet classes; masks on validation and train-semi)",
))
