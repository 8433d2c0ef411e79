"""The cache folder of the embedded datasets, and writing a dataset folder exactly once.

Folder names carry a fingerprint of the generation settings, so changing a setting writes a new folder and never
reuses a stale one. Writing goes to a temporary sibling folder that is renamed into place when complete, so an
interrupted generation leaves nothing half-written behind.
"""

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from ..atomic_files import temp_dir_beside

CACHE_ENV = "ATTENT_VISION_CACHE"


def default_cache_dir() -> Path:
    """$ATTENT_VISION_CACHE, else ~/.cache/attent_vision."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "attent_vision")


def fingerprint(settings) -> str:
    """A short hash of a settings dataclass (and its ``version``, bumped when the generator changes)."""
    fields = dict(asdict(settings), version=getattr(settings, "version", 0))
    return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]


def write_once(root: Path, write: Callable[[Path], None], marker: str) -> Path:
    """Make ``root`` exist with complete contents: if ``root/marker`` is missing, call ``write(tmp)`` on a temporary
    sibling folder (which must create ``marker`` last) and rename it into place. Concurrent writers (ranks, parallel
    test sessions) each write their own copy; the first rename wins and the others are discarded."""
    if (root / marker).is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir_beside(root)  # readable like any folder (mkdtemp would make it 0700 after the rename)
    try:
        write(tmp)
        try:
            os.rename(tmp, root)
        except OSError:  # another process finished first: theirs is identical, keep it
            if not (root / marker).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root
