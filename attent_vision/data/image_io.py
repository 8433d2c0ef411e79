"""Reading image files with torchvision.io, turning every decoder failure into a DataError that names the file.

torchvision's decoders (libjpeg-turbo, libpng) are the fast path for data loading; their error messages start with
a C++ source location, which we strip so that the user sees only what went wrong with their file.
"""

import errno
import os
import re
import warnings
from pathlib import Path

import torch
import torchvision.io as tio
import torchvision.transforms.v2.functional as TF

from ..errors import DataError

# Appended to messages about one bad file: the two ways forward.
SKIP_HINT = "fix or remove the file, or set data.skip_bad_samples=true to leave such samples out (they are counted)"

# "decode_png, /path/to/decode_png.cpp:79, Out of bound read ..." -> "Out of bound read ..."
_SOURCE_LOCATION = re.compile(r"^[^,]*, [^,]*:\d+, ")

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg"})

# torchvision 0.29 deprecates its decoders in favour of TorchCodec, and warns on every call. They remain the fastest
# image decoders we can depend on across the supported torchvision range, so we silence exactly that warning, and
# only around our own calls: importing the package leaves the user's warning filters as they were (a user who turns
# warnings into errors still gets decoded images, not a DataError made of the deprecation notice).
DECODER_DEPRECATION = "The image decoding and encoding capabilities of TorchVision"


def is_image_file(path: Path) -> bool:
    """Image files by extension, matched case-insensitively (real folders mix .JPEG, .jpg and .PNG)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def decode_image_file(path: Path | str, *, rgb: bool = False) -> torch.Tensor:
    """Decode ``path`` into a C x H x W tensor: uint8 3 x H x W when ``rgb`` (grey, palette and alpha images are
    converted, 16-bit colour is scaled to 8 bits), else the stored channels and bit depth unchanged (uint8 or
    uint16; palette PNGs keep their indices). Raises DataError naming the file when it cannot be read or decoded
    (missing, empty, truncated, not an image)."""
    mode = tio.ImageReadMode.RGB if rgb else tio.ImageReadMode.UNCHANGED
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=DECODER_DEPRECATION, category=DeprecationWarning)
            image = tio.decode_image(tio.read_file(str(path)), mode=mode)
    except Exception as e:  # torchvision raises RuntimeError for every kind of decoder failure
        if os.path.exists(path) and not os.access(path, os.R_OK):  # not damaged: this user may not read it
            raise DataError(f"cannot read {path}: permission denied; make it readable for this user (chmod/chown), "
                            f"or point data.root at a copy this user can read; {SKIP_HINT}") from None
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"cannot decode {path} ({_SOURCE_LOCATION.sub('', message)[:160]}); {SKIP_HINT}") from None
    if rgb and image.dtype != torch.uint8:
        image = TF.to_dtype(image, torch.uint8, scale=True)
    return image


def decode_single_channel(path: Path | str, what: str) -> torch.Tensor:
    """Decode a label or depth map that must have one channel; returns 1 x H x W (uint8 or uint16)."""
    image = decode_image_file(path)
    if image.shape[0] != 1:
        raise DataError(
            f"{path} has {image.shape[0]} channels; {what} must be a single-channel (greyscale or palette) PNG. "
            f"Re-export it with one channel; {SKIP_HINT}"
        )
    return image


def list_images(folder: Path, bad_links: dict[str, str] | None = None) -> dict[str, Path]:
    """stem -> path for the image files directly in ``folder``. Two files with one stem (``a.png`` and
    ``a.JPEG``) would make the pairing ambiguous, so they are an error. An image name that is a symbolic link to
    nothing (broken, or a loop) is an error naming it; given ``bad_links``, it is recorded there instead (stem ->
    what is wrong, without a remedy) and left out of the listing, for callers that skip bad samples."""
    images: dict[str, Path] = {}
    # os.scandir knows file types without a stat per file: it matters for folders of 10^5 images.
    with os.scandir(folder) as entries:
        entries = sorted(entries, key=lambda e: e.name)
    for e in entries:
        path = Path(e.path)
        if not is_image_file(path):
            continue
        problem = bad_link(e)  # a link to nothing would otherwise vanish silently, or stop the scan in a traceback
        if problem is not None:
            if bad_links is None:
                raise DataError(f"{problem}; fix or remove it")
            bad_links.setdefault(path.stem, problem)
            continue
        if not e.is_file():
            continue
        if path.stem in images:
            raise DataError(f"{images[path.stem]} and {path.name} share the stem '{path.stem}', so the sample is "
                            "ambiguous; keep one of them")
        images[path.stem] = path
    return images


def bad_link(entry: os.DirEntry) -> str | None:
    """What is wrong with a directory entry that is a symbolic link leading to no file or folder (a broken link,
    or a loop such as ``a.png -> a.png``, on which every stat fails with ELOOP); None for any other entry."""
    if not entry.is_symlink():
        return None
    try:
        if entry.is_file() or entry.is_dir():
            return None
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        return f"{entry.path} is a symbolic link loop (following it never reaches a file)"
    return f"{entry.path} is a broken symbolic link (to {os.readlink(entry.path)})"
