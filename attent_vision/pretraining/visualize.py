"""Reconstruction figures: masked input, prediction and target per modality for a few validation samples, one row
per sample, each tile enlarged (nearest neighbour) to at least MIN_TILE pixels and labelled. Written atomically,
like every file of the run folder."""

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from ..atomic_files import atomic_write
from ..data.normalize import IMAGENET_MEAN, IMAGENET_STD
from ..storage import writing

MIN_TILE = 128  # pixels per tile side at least: small training images are enlarged by a whole factor to this
GAP, GROUP_GAP, MARGIN = 2, 10, 6  # pixels between tiles, between modalities, around the labels


def _rgb(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x * std + mean).clamp(0, 1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Per-image min-max to [0, 1], as 3 channels. B x 1 x H x W -> B x 3 x H x W."""
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    return ((x - lo) / (hi - lo).clamp_min(1e-6)).expand(-1, 3, -1, -1)


def _colour(labels: torch.Tensor, size) -> torch.Tensor:
    """Class ids B x h x w -> a fixed pseudo-colour per id, B x 3 x H x W (nearest upsampling)."""
    ids = labels.long().clamp(0, 255)
    palette = torch.stack([(ids * 37) % 255, (ids * 91 + 50) % 255, (ids * 163 + 100) % 255], dim=1).float() / 255
    palette = torch.where((labels == 255).unsqueeze(1), torch.zeros_like(palette), palette)
    return F.interpolate(palette, size=size, mode="nearest")


def _hide(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Grey out masked tokens. image B x 3 x H x W, mask B x N (True = hidden) on a square grid."""
    side = int(mask.shape[1] ** 0.5)
    pix = F.interpolate(mask.float().view(-1, 1, side, side), size=image.shape[-2:], mode="nearest")
    return image * (1 - pix) + 0.5 * pix


@torch.no_grad()
def save_reconstructions(batch: dict, preds: dict, masks: dict, path: Path) -> Path:
    """One row per sample: for each predicted modality, [masked input,] prediction, target; labelled."""
    size = max((p.shape[-2:] for p in preds.values()), key=lambda hw: hw[0])  # full resolution (semseg is 1/4)
    columns = []  # (modality, what, B x 3 x H x W in [0, 1])
    for task, pred in preds.items():
        if task == "norm_rgb":
            continue
        if task == "rgb":
            target, shown = _rgb(batch["rgb"]), _rgb(pred.float())
        elif task == "depth":
            target, shown = _gray(batch["depth"]), _gray(pred.float())
        else:
            target, shown = _colour(batch["semseg"], size), _colour(pred.argmax(1), size)
        if task in masks:
            columns.append((task, "masked input", _hide(target, masks[task])))
        columns += [(task, "prediction", shown), (task, "target", target)]
    return save_figure(columns, path)


def _font(size: int = 14):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1, or built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _centred(draw: ImageDraw.ImageDraw, centre_x: float, y: float, text: str, font) -> None:
    draw.text((centre_x - draw.textlength(text, font=font) / 2, y), text, fill="black", font=font)


def save_figure(columns: list[tuple[str, str, torch.Tensor]], path: Path) -> Path:
    """Draw ``columns`` ((modality, what, B x 3 x H x W in [0, 1]) each) as a labelled grid: a header naming each
    modality over its columns and what each column shows, a label per sample row. The labels are also stored in
    the PNG's text chunks ``columns`` and ``rows``."""
    batch, _, h, w = columns[0][2].shape
    scale = max(1, -(-MIN_TILE // min(h, w)))
    tile_h, tile_w = h * scale, w * scale
    font = _font()
    line = font.getbbox("Mg")[3] + MARGIN
    left = int(font.getlength(f"sample {batch}")) + 2 * MARGIN
    xs, x = [], left  # each column's left edge: a wider gap where the modality changes
    for i, (task, _, _) in enumerate(columns):
        if i:
            x += GROUP_GAP if task != columns[i - 1][0] else GAP
        xs.append(x)
        x += tile_w
    top = 2 * line + MARGIN
    canvas = Image.new("RGB", (x + MARGIN, top + batch * (tile_h + GAP)), "white")
    draw = ImageDraw.Draw(canvas)
    for task in dict.fromkeys(t for t, _, _ in columns):  # modality names centred over their columns
        span = [xs[i] for i, c in enumerate(columns) if c[0] == task]
        _centred(draw, (span[0] + span[-1] + tile_w) / 2, MARGIN, task, font)
    for (task, what, images), x0 in zip(columns, xs):
        _centred(draw, x0 + tile_w / 2, MARGIN + line, what, font)
        tiles = F.interpolate(images.float().cpu().clamp(0, 1), scale_factor=scale, mode="nearest")
        pixels = (tiles * 255).round().byte().permute(0, 2, 3, 1).numpy()
        for b in range(batch):
            canvas.paste(Image.fromarray(pixels[b]), (x0, top + b * (tile_h + GAP)))
    for b in range(batch):
        draw.text((MARGIN, top + b * (tile_h + GAP) + (tile_h - line) / 2), f"sample {b + 1}", fill="black",
                  font=font)
    info = PngInfo()
    info.add_text("columns", " | ".join(f"{task}: {what}" for task, what, _ in columns))
    info.add_text("rows", " | ".join(f"sample {b + 1}" for b in range(batch)))
    write_png(canvas, info, path)
    return path


def write_png(image: Image.Image, info: PngInfo, path: Path) -> None:
    """Write ``image`` as a PNG at ``path`` whole or not at all: to a temporary sibling renamed into place, so a full
    disk never leaves a truncated or empty figure (an earlier one stays). A full disk or an unwritable folder is a
    StorageError naming ``path`` (storage.py)."""
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as f:  # <name>.png.<random>.tmp; PIL takes the format from the argument
            image.save(f, format="PNG", pnginfo=info)
