"""The images to label: listed, assigned to a split, and cut into batches that do not depend on the number of ranks.

An input folder is either class folders (``<input>/<class>/<name>.jpg``, as ImageNet) or flat (``<input>/<name>.jpg``,
written as class ``all``); both may mix. Only the pretraining loader's image types are labelled (.png/.jpg/.jpeg,
any case): every other file is counted as ignored, so nothing is left out without a number saying so. Hidden files
(``.DS_Store``) are not images and not counted.

Batch k always holds images [k*B, (k+1)*B) of the sorted list, and rank r of W runs batches r, r+W, ...: whatever the
number of ranks, a batch holds the same images, so its outputs are the same bits (a batch's numerics can depend on
its composition) and a resumed or sharded run writes the files one process would. One condition: the same number
of threads per process. A CPU kernel's summation order follows its thread count, which moves a depth value by a
unit of the last place now and then; torchrun sets OMP_NUM_THREADS=1 for each rank, so a one-process run
compared with a CPU torchrun run needs OMP_NUM_THREADS=1 too (on GPUs every rank runs the same kernels).
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..data.image_io import is_image_file
from ..errors import DataError

FLAT_CLASS = "all"  # the class folder of images that sit directly in the input folder


@dataclass(frozen=True)
class InputImage:
    path: Path  # the file to read
    class_name: str  # its class folder in the output
    split: str  # the split folder it goes to

    @property
    def stem(self) -> str:
        return self.path.stem


@dataclass
class Listing:
    images: list[InputImage]
    ignored: list[Path]  # files that are not images of a type the loader reads


def list_input(root: Path, split: str, val_split: str, val_fraction: float) -> Listing:
    """Every image under ``root`` (one class level), sorted by (class, name), each with its split. Raises DataError
    for a folder below a class folder (the layout has one class level), two files with one stem in one class (the
    loader pairs modalities by stem), or a folder without images."""
    images, ignored = [], []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            for file in sorted(entry.iterdir()):
                if file.name.startswith("."):
                    continue
                if file.is_dir():
                    raise DataError(f"{file} is a folder inside class folder {entry}: the input holds images in class "
                                    f"folders one level deep (<input>/<class>/<image>); move or flatten it, or label "
                                    f"that folder in its own run (input={file})")
                (images if is_image_file(file) else ignored).append((entry.name, file))
        else:
            (images if is_image_file(entry) else ignored).append((FLAT_CLASS, entry))
    images.sort(key=lambda pair: (pair[0], pair[1].name))
    check_unique_stems(images)
    if not images:
        raise DataError(f"no .png/.jpg/.jpeg images in {root} or its class folders ({len(ignored)} other files); "
                        "point input= at the folder of your images")
    listing = [InputImage(path, cls, val_split if in_val(cls, path.stem, val_fraction) else split)
               for cls, path in images]
    return Listing(listing, [path for _, path in ignored])


def check_unique_stems(images: list[tuple[str, Path]]) -> None:
    seen: dict[tuple[str, str], Path] = {}
    for cls, path in images:
        other = seen.setdefault((cls, path.stem), path)
        if other != path:
            where = "the input folder" if cls == FLAT_CLASS else f"class folder {cls}"
            raise DataError(f"{other} and {path} share the name {path.stem!r} in {where}: their labels would have one "
                            "file name; rename one of them")


def in_val(class_name: str, stem: str, fraction: float) -> bool:
    """Whether an image goes to the val split: a hash of its class and stem, so adding images never moves one."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(f"{class_name}/{stem}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def batches_of_rank(count: int, batch_size: int, rank: int, world_size: int) -> list[range]:
    """The index ranges of the batches rank ``rank`` labels: batch k is [k*B, (k+1)*B) of the whole list, dealt
    round-robin to the ranks."""
    starts = range(0, count, batch_size)
    return [range(s, min(s + batch_size, count)) for k, s in enumerate(starts) if k % world_size == rank]
