"""Writing into the run folder: a full disk, a read-only folder or a missing permission as one actionable line.

These are not bugs but problems the user fixes (free some space, choose another folder), so the writers of the run
folder (atomic checkpoint and results writes, the run lock, the entry points' start-up check) turn the operating
system's error into a :class:`~attent_vision.errors.StorageError` that names the path, says what went wrong (with
the free space when the disk is full) and what to do. The entry points print it as one line and exit with status 2.
Writers remove their temporary file first, so the previous version of the file is left as it was.
"""

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import StorageError, UserError

_SPACE = ("then rerun the same command: it continues from the last checkpoint written, if any (or choose a run folder "
          "on another disk with hydra.run.dir)")
_ANOTHER = "or choose another run folder (hydra.run.dir)"
# errno -> (what went wrong, what to do)
PROBLEMS = {
    errno.ENOSPC: ("no space left on the device", f"free up space, {_SPACE}"),
    errno.EDQUOT: ("the disk quota is exceeded", f"free up space within the quota, {_SPACE}"),
    errno.EROFS: ("the file system is read-only", "choose a run folder on a writable disk (hydra.run.dir)"),
    errno.EACCES: ("permission denied", f"make the folder writable for this user, {_ANOTHER}"),
    errno.EPERM: ("operation not permitted", f"make the folder writable for this user, {_ANOTHER}"),
    errno.ENOTDIR: ("a folder on its path is a file", f"move that file away, {_ANOTHER}"),
    errno.EEXIST: ("a file is in the way of the folder", f"move that file away, {_ANOTHER}"),
}


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def free_space(path: str | Path) -> str:
    """'<size> free on the disk of <folder>' for the nearest existing folder of ``path``."""
    folder = Path(path)
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    try:
        return f"{_size(shutil.disk_usage(folder).free)} free on the disk of {folder}"
    except OSError:
        return f"free space on the disk of {folder} unknown"


def storage_error(error: BaseException, path: str | Path) -> StorageError | None:
    """The StorageError for ``error`` (an OSError, or an error raised while handling one: torch's writer reports a
    failed write as a RuntimeError) met while writing ``path``; None when it is not a storage problem."""
    seen = set()
    while error is not None and id(error) not in seen and not isinstance(error, UserError):
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in PROBLEMS:
            what, todo = PROBLEMS[error.errno]
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                what = f"{what} ({free_space(path)})"
            return StorageError(f"cannot write {path}: {what}; {todo}")
        error = error.__cause__ or error.__context__
    return None


@contextmanager
def writing(path: str | Path):
    """Around a write of ``path``: a storage problem becomes a StorageError naming ``path``; others pass."""
    try:
        yield
    except Exception as e:
        problem = storage_error(e, path)
        if problem is None:
            raise
        raise problem from None


def check_writable(folder: str | Path, probe_bytes: int = 1 << 16) -> None:
    """Create ``folder`` and write (and sync) ``probe_bytes`` there; StorageError when that fails. The entry points
    call it before Hydra writes its metadata and log file, which would otherwise fail with a traceback."""
    folder = Path(folder)
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as f:  # unnamed: nothing is left behind
            f.write(b"\0" * probe_bytes)
            f.flush()
            os.fsync(f.fileno())
