"""The labelling models: a Hugging Face depth model and a universal (Mask2Former-style) segmentation model, each
with its own image processor, loaded once and run on batches of images resized to one square resolution.

A batch arrives as uint8 tensors already resized (3 x R x R, by the decoding workers); the model's processor does
what it was trained with (rescale, normalise; never a resize or a pad, which would move the labels off the pixels),
the model runs in the chosen precision, and the predictions are resized back to each image's own size: depth
bicubic (as transformers' own depth post-processing), segmentation by the processor's post-processing (class
scores resized, then the argmax or the panoptic merge), one image at a time and at most MAX_LABEL_SIDE pixels on
the long side (133 float score maps of a 12-megapixel photo would take 6 GB; above the cap the class ids are
computed at the capped size and resized to the photo's, nearest).
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from ..errors import ConfigError, UserError
from ..extras import require
from .encoding import depth_to_uint16, panoptic_to_uint8, semantic_to_uint8

log = logging.getLogger("attent_vision")

COMMAND = "attent-pseudolabel"
AUTO_CLASSES = {"depth": "AutoModelForDepthEstimation", "semseg": "AutoModelForUniversalSegmentation"}
WHAT = {"depth": "a depth-estimation model (DPT, Depth Anything, ...)",
        "semseg": "a Mask2Former or MaskFormer segmentation model"}
# The universal segmentation models whose outputs (class and mask logits per query) the processors' semantic and
# panoptic post-processing read; OneFormer needs a task prompt, DETR-style models another post-processing.
SEGMENTATION_CLASSES = ("Mask2FormerForUniversalSegmentation", "MaskFormerForInstanceSegmentation")
MAX_LABEL_SIDE = 1024  # class scores are resized to at most this many pixels on an image's long side


def import_transformers():
    """transformers, or one line naming the ``pseudolabel`` extra; its own progress bars and info chatter off
    (the command reports loading and progress itself)."""
    transformers = require("transformers", "pseudolabel", COMMAND)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers


@dataclass
class Labeller:
    task: str  # depth | semseg
    settings: DictConfig  # cfg.depth / cfg.semseg
    model: torch.nn.Module
    processor: object
    dtype: torch.dtype
    description: dict = field(default_factory=dict)  # what the manifest records

    @torch.inference_mode()
    def label(self, images: torch.Tensor, sizes: list[tuple[int, int]]) -> list:
        """images: B x 3 x R x R uint8 (resized); sizes: each image's (H, W) -> B label arrays (H x W)."""
        device = next(self.model.parameters()).device
        no_pad = {"do_pad": False} if getattr(self.processor, "do_pad", None) else {}  # ZoeDepth's, DPT's option
        inputs = self.processor(images=list(images), do_resize=False, return_tensors="pt", **no_pad)
        pixel_values = inputs["pixel_values"].to(device=device, dtype=self.dtype)
        try:
            outputs = self.model(pixel_values=pixel_values)
        except torch.OutOfMemoryError:
            raise UserError(f"the {self.task} model ran out of GPU memory on a batch of {len(images)} images at "
                            f"{self.task}.resolution={self.settings.resolution}: lower batch_size or "
                            f"{self.task}.resolution (rerun the same command: finished batches are kept)") from None
        if self.task == "depth":
            return self.depth_maps(outputs.predicted_depth.float(), sizes)
        return [self.class_map(outputs.class_queries_logits[i: i + 1].float(),
                               outputs.masks_queries_logits[i: i + 1].float(), size) for i, size in enumerate(sizes)]

    def depth_maps(self, predicted: torch.Tensor, sizes: list[tuple[int, int]]) -> list:
        """predicted: B x h x w -> per image H x W uint16."""
        maps = []
        for prediction, size in zip(predicted, sizes):
            resized = F.interpolate(prediction[None, None], size=size, mode="bicubic", align_corners=False)[0, 0]
            maps.append(depth_to_uint16(resized.cpu(), self.settings.prediction, self.settings.far_limit))
        return maps

    def class_map(self, class_logits: torch.Tensor, mask_logits: torch.Tensor, size: tuple[int, int]):
        """One image's query logits (1 x Q x C+1, 1 x Q x h x w, fp32) -> H x W uint8 class ids."""
        outputs = SimpleNamespace(class_queries_logits=class_logits, masks_queries_logits=mask_logits)
        scale = min(1.0, MAX_LABEL_SIDE / max(size))
        target = [(max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))]
        if self.settings.mode == "semantic":
            ids = self.processor.post_process_semantic_segmentation(outputs, target_sizes=target)[0]
            labels = semantic_to_uint8(resize_ids(ids, size).cpu())
        else:
            [panoptic] = self.processor.post_process_panoptic_segmentation(
                outputs, threshold=self.settings.threshold, target_sizes=target, label_ids_to_fuse=set())
            labels = panoptic_to_uint8(resize_ids(panoptic["segmentation"], size).cpu(), panoptic["segments_info"])
        return labels


def load_labeller(task: str, settings: DictConfig, device: torch.device, dtype: torch.dtype) -> Labeller:
    """The model and processor of ``settings.model`` (a hub id or a local folder) at ``settings.revision``; a
    ConfigError of one line when it cannot be loaded or is not a model for ``task``."""
    transformers = import_transformers()
    key = f"{task}.model"
    try:
        processor = transformers.AutoImageProcessor.from_pretrained(settings.model, revision=settings.revision)
        model = getattr(transformers, AUTO_CLASSES[task]).from_pretrained(settings.model, revision=settings.revision)
    except ValueError as e:  # transformers: "Unrecognized configuration class ... for this kind of AutoModel"
        raise ConfigError(f"config key {key}={settings.model!r} is not {WHAT[task]} ({first_sentence(e)}); choose "
                          f"one with {task}=<preset> (attent-pseudolabel --help) or another {task} model") from None
    except (OSError, ImportError) as e:  # not on the hub, no network, not in the cache, a gated model
        raise ConfigError(f"config key {key}={settings.model!r}: cannot load it ({first_sentence(e)}); give a local "
                          "folder saved with save_pretrained or a Hugging Face model id (downloaded on first use; "
                          "offline (HF_HUB_OFFLINE=1) it must be in the Hugging Face cache, $HF_HOME)") from None
    if task == "semseg" and type(model).__name__ not in SEGMENTATION_CLASSES:
        raise ConfigError(f"config key {key}={settings.model!r} is a {type(model).__name__}, not {WHAT[task]} (their "
                          "class and mask outputs are what the labelling reads); choose one with semseg=<preset>")
    model = model.to(device=device, dtype=dtype).eval()
    description = {"model": settings.model, "revision": settings.revision,
                   "resolved_revision": hub_commit(transformers, settings, model),
                   "class": type(model).__name__, "resolution": settings.resolution}
    if task == "depth":
        description |= {"prediction": settings.prediction, "far_limit": settings.far_limit}
    else:
        classes = len(model.config.id2label)
        if classes > 255:
            raise ConfigError(f"config key {key}={settings.model!r} has {classes} classes: semseg PNGs hold ids "
                              "0..254 (255 = void); choose a model with at most 255 classes")
        if classes != 133:
            log.warning("%s has %d classes, not COCO panoptic's 133: pretrain with model.semseg_num_classes=%d",
                        settings.model, classes, classes)
        description |= {"num_classes": classes, "mode": settings.mode, "threshold": settings.threshold}
    log.info("%s labeller: %s (%s, %s)", task, settings.model, type(model).__name__, str(dtype).replace("torch.", ""))
    return Labeller(task, settings, model, processor, dtype, description)


def hub_commit(transformers, settings: DictConfig, model) -> str | None:
    """The hub commit a model id resolved to (None for a local folder): the snapshot folder its files were read
    from (transformers 5 no longer keeps it in the config), else the config's ``_commit_hash`` (transformers 4)."""
    if Path(settings.model).expanduser().exists():
        return None
    try:
        config_file = transformers.utils.cached_file(settings.model, "config.json", revision=settings.revision)
    except OSError:
        config_file = None
    if config_file and Path(config_file).parent.parent.name == "snapshots":
        return Path(config_file).parent.name
    return getattr(model.config, "_commit_hash", None)


def resize_ids(ids: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """H' x W' integer ids -> H x W, nearest (a no-op at the same size)."""
    if tuple(ids.shape) == tuple(size):
        return ids
    return F.interpolate(ids[None, None].float(), size=size, mode="nearest-exact")[0, 0].to(ids.dtype)


def first_sentence(error: BaseException, limit: int = 160) -> str:
    """The start of a library's message: transformers' run to several sentences of generic advice."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    sentence = text.split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= limit else sentence[: limit - 3] + "..."
