"""Tiny randomly initialised labelling models for tests of attent-pseudolabel: a DPT and a Depth Anything depth
model and a Mask2Former with the 133 COCO-panoptic classes, built from their configs (no weights downloaded, no
network) and saved with ``save_pretrained`` (model and image processor) into a folder, which is what a user passes as
``depth.model=<folder>`` or ``semseg.model=<folder>``.

Each builder seeds torch first, so the same call always saves the same weights, and takes a second or so on a CPU.
The sizes are the smallest the architectures accept: DPT at 64 px (patch 16), Depth Anything at 56 px (a DINOv2
backbone with patch 14), Mask2Former at 64 px (a four-stage Swin backbone).
"""

from pathlib import Path

import torch

# Classes of the COCO-panoptic head MultiMAE's labels use; the names only need to be distinct.
COCO_PANOPTIC_CLASSES = 133
DPT_RESOLUTION = 64
DEPTH_ANYTHING_RESOLUTION = 56
MASK2FORMER_RESOLUTION = 64


def save_tiny_dpt(folder: Path | str, seed: int = 0) -> Path:
    """A four-layer DPT depth model (ViT hidden size 32) and its DPTImageProcessor; returns ``folder``."""
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    folder = Path(folder)
    torch.manual_seed(seed)
    config = DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                       image_size=DPT_RESOLUTION, patch_size=16, backbone_out_indices=[0, 1, 2, 3],
                       neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16, head_hidden_size=8,
                       reassemble_factors=[4, 2, 1, 0.5])
    DPTForDepthEstimation(config).eval().save_pretrained(folder)
    DPTImageProcessor(size={"height": DPT_RESOLUTION, "width": DPT_RESOLUTION}).save_pretrained(folder)
    return folder


def save_tiny_depth_anything(folder: Path | str, seed: int = 0) -> Path:
    """A Depth Anything model on a four-layer DINOv2 backbone (patch 14) and a DPTImageProcessor; returns
    ``folder``."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    folder = Path(folder)
    torch.manual_seed(seed)
    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                            image_size=DEPTH_ANYTHING_RESOLUTION, patch_size=14,
                            out_features=["stage1", "stage2", "stage3", "stage4"], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 32],
                                 fusion_hidden_size=16, head_hidden_size=8, reassemble_factors=[4, 2, 1, 0.5])
    DepthAnythingForDepthEstimation(config).eval().save_pretrained(folder)
    DPTImageProcessor(size={"height": DEPTH_ANYTHING_RESOLUTION, "width": DEPTH_ANYTHING_RESOLUTION},
                      ).save_pretrained(folder)
    return folder


def save_tiny_mask2former(folder: Path | str, seed: int = 0, class_logit_scale: float = 1.0) -> Path:
    """A Mask2Former universal-segmentation model (Swin backbone, 6 queries) with 133 classes named like COCO
    panoptic's (id2label 0..132), and its Mask2FormerImageProcessor; returns ``folder``.

    ``class_logit_scale`` multiplies the class head (weights and bias, so every class logit). Freshly initialised,
    each query's class scores are near-uniform (about 1/134), and panoptic post-processing, which keeps a pixel for a
    query only where mask probability x class score >= 0.5, keeps no segment at any threshold: every pixel is void.
    At 100 most queries are sure of one class (score near 1) and panoptic maps have classes and void."""
    import transformers as hf

    folder = Path(folder)
    torch.manual_seed(seed)
    backbone = hf.SwinConfig(image_size=MASK2FORMER_RESOLUTION, patch_size=4, embed_dim=32, depths=[1, 1, 1, 1],
                             num_heads=[1, 1, 1, 1], window_size=2,
                             out_features=["stage1", "stage2", "stage3", "stage4"])
    id2label = {i: f"coco_class_{i}" for i in range(COCO_PANOPTIC_CLASSES)}
    config = hf.Mask2FormerConfig(backbone_config=backbone, feature_size=32, mask_feature_size=32, hidden_dim=32,
                                  encoder_feedforward_dim=32, dim_feedforward=32, encoder_layers=1, decoder_layers=2,
                                  num_queries=6, num_attention_heads=2, common_stride=4, id2label=id2label,
                                  label2id={name: i for i, name in id2label.items()})
    model = hf.Mask2FormerForUniversalSegmentation(config).eval()
    with torch.no_grad():
        model.class_predictor.weight.mul_(class_logit_scale)
        model.class_predictor.bias.mul_(class_logit_scale)
    model.save_pretrained(folder)
    hf.Mask2FormerImageProcessor(size={"height": MASK2FORMER_RESOLUTION, "width": MASK2FORMER_RESOLUTION},
                                 ).save_pretrained(folder)
    return folder


def save_tiny_labellers(root: Path | str) -> dict[str, Path]:
    """All three under ``root`` (dpt/, depth_anything/, mask2former/); returns name -> folder."""
    root = Path(root)
    return {"dpt": save_tiny_dpt(root / "dpt"),
            "depth_anything": save_tiny_depth_anything(root / "depth_anything"),
            "mask2former": save_tiny_mask2former(root / "mask2former")}
