"""Where an image's labels go, whether they are there, and writing them whole or not at all.

Per image ``<class>/<name>`` of split ``s``: ``<output>/s/depth/<class>/<stem>.png``, ``<output>/s/semseg/<class>/
<stem>.png`` and the rgb file ``<output>/s/rgb/<class>/<name>`` (linked or copied, its name unchanged). Every file
appears by a rename of a complete temporary sibling, and the rgb comes last: a sample the pretraining loader can
see (it lists rgb/) always has its labels, however the run ended.
"""

import logging
import os
import secrets
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic_files import atomic_write, atomic_write_path
from ..storage import writing
from .inputs import InputImage

log = logging.getLogger("attent_vision")

OUTPUT_FOLDER = ("output folder", "output")  # storage errors' remedies name the setting that chooses the folder


class OutputLayout:
    def __init__(self, root: Path, tasks: list[str], rgb_mode: str):
        self.root, self.tasks, self.rgb_mode = root, list(tasks), rgb_mode
        self.copied_instead_of_linked = 0  # hard links refused (another file system): copies made instead

    def label_path(self, image: InputImage, task: str) -> Path:
        return self.root / image.split / task / image.class_name / f"{image.stem}.png"

    def rgb_path(self, image: InputImage) -> Path:
        return self.root / image.split / "rgb" / image.class_name / image.path.name

    def missing(self, image: InputImage) -> list[Path]:
        """The outputs of ``image`` not there yet (lexists: a symlinked rgb counts even if its target moved)."""
        paths = [self.label_path(image, task) for task in self.tasks] + [self.rgb_path(image)]
        return [p for p in paths if not os.path.lexists(p)]

    def is_done(self, image: InputImage) -> bool:
        return not self.missing(image)

    def write(self, image: InputImage, labels: dict[str, np.ndarray]) -> None:
        """Write the missing label files of ``image`` (task -> H x W uint8/uint16), then its rgb."""
        for task, array in labels.items():
            path = self.label_path(image, task)
            if not path.exists():
                with writing(path, OUTPUT_FOLDER):
                    write_png(array, path)
        rgb = self.rgb_path(image)
        if not os.path.lexists(rgb):
            with writing(rgb, OUTPUT_FOLDER):
                self.place_rgb(image.path, rgb)

    def place_rgb(self, source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        if self.rgb_mode == "copy":
            return copy_atomically(source, target)
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            if self.rgb_mode == "symlink":
                os.symlink(source.resolve(), temporary)
            else:
                try:
                    os.link(source, temporary)
                except OSError as e:  # another file system, or links refused there: a copy is the same bytes
                    if not self.copied_instead_of_linked:
                        log.warning("rgb=link: cannot hard-link %s into the output (%s); copying the rgb files "
                                    "instead (rgb=symlink links them without copies)", source, e.strerror or e)
                    self.copied_instead_of_linked += 1
                    return copy_atomically(source, target)
            os.replace(temporary, target)
        except BaseException:
            if os.path.lexists(temporary):
                os.remove(temporary)
            raise


def copy_atomically(source: Path, target: Path) -> None:
    with atomic_write_path(target) as temporary:
        shutil.copyfile(source, temporary)


def write_png(array: np.ndarray, path: Path) -> None:
    """A single-channel PNG of ``array`` (H x W uint8 or uint16), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        Image.fromarray(array).save(f, format="PNG")
