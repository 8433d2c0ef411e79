"""Reading the images to label in worker processes: decoded exactly as the pretraining loader decodes them (so the
labels line up with the pixels training reads: same size, no EXIF rotation), then resized to each model's square
input resolution. A file that cannot be decoded becomes an error record for the main process to report or raise,
never an exception that kills a worker and with it the whole run.
"""

import torch
import torchvision.transforms.v2.functional as TF
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode

from ..data.image_io import SKIP_HINT, decode_image_file
from ..errors import DataError
from .inputs import InputImage

BAD_IMAGE_HINT = "fix or remove the file, or set on_bad_image=skip to label the others (skipped images are counted)"


def without_loader_hint(error: DataError) -> str:
    """What is wrong with the file, without the loader's remedy (its settings are not this command's)."""
    text = str(error).replace(f"; {SKIP_HINT}", "").replace(SKIP_HINT, "").strip()
    return text.replace("point data.root at a copy", "point input at a copy")


class DecodedImages(Dataset):
    """Item i -> {"index": i, "size": (H, W), "inputs": {task: uint8 3 x R x R}} or {"index": i, "error": what is
    wrong with the file (it names the path)}."""

    def __init__(self, images: list[InputImage], resolutions: dict[str, int]):
        self.images, self.resolutions = images, resolutions

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        try:
            image = decode_image_file(self.images[index].path, rgb=True)
        except DataError as e:
            return {"index": index, "error": without_loader_hint(e)}
        inputs = {task: TF.resize(image, [r, r], interpolation=InterpolationMode.BICUBIC, antialias=True)
                  for task, r in self.resolutions.items()}
        return {"index": index, "size": tuple(image.shape[-2:]), "inputs": inputs}


def decoded_batches(images: list[InputImage], batches: list[range], resolutions: dict[str, int],
                    num_workers: int) -> DataLoader:
    """Batches (lists of item dicts) of ``images`` in the order of ``batches`` (index ranges)."""
    return DataLoader(DecodedImages(images, resolutions), batch_sampler=[list(b) for b in batches],
                      num_workers=num_workers, collate_fn=list, persistent_workers=False)


def stack_inputs(items: list[dict], task: str) -> torch.Tensor:
    """The decoded items' inputs for ``task``: B x 3 x R x R uint8."""
    return torch.stack([item["inputs"][task] for item in items])
