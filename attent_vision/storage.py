"""Reading and writing files: a full disk, a read-only folder, a missing permission or a name too long as one
actionable line.

These are not bugs but problems the user fixes (free some space, choose another folder, make a folder readable), so
the writers of the run folder (atomic checkpoint and results writes, the run lock, the entry points' start-up check)
turn the operating system's error into a :class:`~attent_vision.errors.StorageError` that names the path, says what
went wrong (with the free space when the disk is full) and what to do. The entry points print it as one line and
exit with status 2. Writers remove their temporary file first, so the previous version of the file is left as it was.

A permission error (EACCES, EPERM) says nothing of whether the operation read or wrote, and the remedies differ
(make the data readable, or choose another run folder): so the operation says which it was. Writers use
:func:`writing`, readers (data folders, the data cache, ``init_from``) :func:`reading`; a handler that cannot know
(an OSError that reached an entry point or the training loop unwrapped) uses :func:`unattributed_error`, which
treats only the run folder as written and says "cannot read or write" elsewhere, never a run-folder remedy for data.
"""

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import StorageError, UserError

RUN_FOLDER = ("run folder", "hydra.run.dir")  # (what the folder is, the setting that chooses it)
CACHE_FOLDER = ("cache folder", "data.cache_dir")
_SPACE = ("then rerun the same command: it continues from the last checkpoint written, if any (or choose a {kind} "
          "on another disk with {setting})")
_ANOTHER = "or choose another {kind} ({setting})"
# errno -> (what went wrong, what to do) when writing; {kind} and {setting} name the folder (RUN_FOLDER by default)
PROBLEMS = {
    errno.ENOSPC: ("no space left on the device", f"free up space, {_SPACE}"),
    errno.EDQUOT: ("the disk quota is exceeded", f"free up space within the quota, {_SPACE}"),
    errno.EROFS: ("the file system is read-only", "choose a {kind} on a writable disk ({setting})"),
    errno.EACCES: ("permission denied", f"make the folder writable for this user, {_ANOTHER}"),
    errno.EPERM: ("operation not permitted", f"make the folder writable for this user, {_ANOTHER}"),
    errno.ENOTDIR: ("a folder on its path is a file", f"move that file away, {_ANOTHER}"),
    errno.EEXIST: ("a file is in the way of the folder", f"move that file away, {_ANOTHER}"),
    errno.ENAMETOOLONG: ("", "shorten {setting}"),  # what: which name, how long (_name_too_long)
}
# A run folder's path is made of more than hydra.run.dir says: its default and a multirun job's folder are named
_RUN_FOLDER_NAMES = " (or the experiment_name or override-based job folder name it is made of)"
# errno -> what went wrong when reading; the remedy names the setting that points at what is read
READ_PROBLEMS = {errno.EACCES: "permission denied", errno.EPERM: "operation not permitted"}
READ_TODO = "make it readable for this user (chmod/chown), or point {setting} at a copy this user can read"
# For a permission error outside the run folder whose operation is unknown (unattributed_error): what a run reads
# there (the data, init_from) and the one thing it writes (the data cache), with the settings that choose them
ELSEWHERE = ("make it readable for this user (and writable, for the data cache) with chmod/chown, or point "
             "data.root, data.cache_dir or init_from elsewhere")
NAME_MAX = 255  # bytes in one file or folder name on Linux and macOS file systems


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


def _name_too_long(path: str | Path) -> str:
    """Which name on ``path`` is too long for the file system (ENAMETOOLONG), in a few words."""
    for part in Path(path).parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            shown = part if len(part) <= 40 else f"{part[:20]}...{part[-12:]}"
            return (f"the name '{shown}' on its path is {size} bytes long, more than the {NAME_MAX} a file system "
                    "allows for one file or folder name")
    return f"the path is {len(os.fsencode(str(path)))} bytes long, more than the system allows"


def _os_errors(error: BaseException):
    """``error`` and the errors it was raised while handling, up to a UserError (already a message of ours)."""
    seen = set()
    while error is not None and id(error) not in seen and not isinstance(error, UserError):
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def storage_error(error: BaseException, path: str | Path, folder: tuple[str, str] = RUN_FOLDER) -> StorageError | None:
    """The StorageError for ``error`` (an OSError, or an error raised while handling one: torch's writer reports a
    failed write as a RuntimeError) met while writing ``path``; None when it is not a storage problem. ``folder``
    names the kind of folder written and the setting that chooses it (RUN_FOLDER, CACHE_FOLDER) for the remedy."""
    kind, setting = folder
    for e in _os_errors(error):
        if isinstance(e, OSError) and e.errno in PROBLEMS:
            what, todo = PROBLEMS[e.errno]
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                what = f"{what} ({free_space(path)})"
            if e.errno == errno.ENAMETOOLONG:
                what, todo = _name_too_long(path), todo + (_RUN_FOLDER_NAMES if folder == RUN_FOLDER else "")
            return StorageError(f"cannot write {path}: {what}; {todo.format(kind=kind, setting=setting)}")
    return None


def read_error(error: BaseException, path: str | Path, setting: str = "data.root") -> StorageError | None:
    """The StorageError for a permission problem met while reading ``path`` (the OSError's own file when it names
    one: a reader may wrap a whole folder scan); None for other errors. ``setting`` is the one that points at what
    is read (data.root, data.cache_dir, init_from)."""
    for e in _os_errors(error):
        if isinstance(e, OSError) and e.errno in READ_PROBLEMS:
            where = e.filename or path
            return StorageError(f"cannot read {where}: {READ_PROBLEMS[e.errno]}; {READ_TODO.format(setting=setting)}")
    return None


def unattributed_error(error: BaseException, run_dir: str | Path) -> StorageError | None:
    """For a handler that does not know whether the failed operation read or wrote (an OSError that reached it
    unwrapped): inside ``run_dir`` (what a run writes), as :func:`storage_error`; elsewhere a permission problem is
    "cannot read or write <path>" with the remedies of the data, the data cache and ``init_from``, never a run
    folder's. None when it is not a storage problem."""
    filename = next((e.filename for e in _os_errors(error) if isinstance(e, OSError) and e.filename), None)
    path, run = Path(os.path.abspath(filename or run_dir)), Path(os.path.abspath(run_dir))
    if path.is_relative_to(run) or run.is_relative_to(path):  # the run folder, in it, or on its way
        return storage_error(error, filename or run_dir)
    for e in _os_errors(error):
        if isinstance(e, OSError) and e.errno in READ_PROBLEMS:
            return StorageError(f"cannot read or write {path}: {READ_PROBLEMS[e.errno]}; {ELSEWHERE}")
    return storage_error(error, path, CACHE_FOLDER)  # a full disk elsewhere: the data cache is what a run writes


@contextmanager
def _translating(translate):
    """Around an operation: an error that ``translate`` turns into a StorageError is raised as that; others pass."""
    try:
        yield
    except Exception as e:
        problem = translate(e)
        if problem is None:
            raise
        raise problem from None


def writing(path: str | Path, folder: tuple[str, str] = RUN_FOLDER):
    """Around a write of ``path``: a storage problem becomes a StorageError naming ``path``; others pass."""
    return _translating(lambda e: storage_error(e, path, folder))


def reading(path: str | Path, setting: str = "data.root"):
    """Around a read of ``path`` (a file, or a scan of the folders under it): a permission problem becomes a
    StorageError "cannot read <the file or folder refused>" naming ``setting`` in its remedy; others pass."""
    return _translating(lambda e: read_error(e, path, setting))


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
