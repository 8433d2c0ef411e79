"""Temporary siblings for atomic writes, created with the permissions of an ordinary file.

Every file the package writes whole-or-not-at-all (results.json, checkpoints, final weights, timm exports, the
embedded datasets' cache folders) is written to a temporary sibling and renamed over its final name. Python's
``tempfile.mkstemp``/``mkdtemp`` create that sibling private (0600/0700), and the rename keeps the mode: results
that collaborators on a shared cluster folder could not read, beside 0644 logs and configs. So the sibling is
created the way ``open()`` and ``mkdir`` create a file: mode 0o666 (folders 0o777) and the kernel applies the
process umask (or the folder's default ACL), giving 0644 under the usual umask 022 and 0600 under 077. No umask is
read or changed, so nothing races with other threads.

Writers use :func:`atomic_write` (a file object) or, for a library that wants a file name (safetensors),
:func:`atomic_write_path`: the sibling, the flush to disk, the rename and the clean-up on any error live here once.
Errors are the OS's own: the run folder's writers wrap the block in ``storage.writing(path)``, which turns a full
disk or an unwritable folder into one line naming ``path``.
"""

import errno
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
_ATTEMPTS = 100  # names are random: a clash means another writer of the same file, almost never twice in a row


def _names(target: Path, suffix: str):
    for _ in range(_ATTEMPTS):
        yield target.with_name(f"{target.name}.{secrets.token_hex(4)}{suffix}")


def temp_file_beside(path: str | Path, suffix: str = ".tmp") -> tuple[int, str]:
    """(fd, name) of a new empty file in ``path``'s folder, named after ``path``, open for writing, with the mode a
    plain ``open(path, "w")`` would give it: what ``tempfile.mkstemp(dir=...)`` returns, minus its 0600."""
    for name in _names(Path(path), suffix):
        try:
            return os.open(name, _FLAGS, 0o666), str(name)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name beside it", str(path))


def temp_dir_beside(path: str | Path, suffix: str = ".tmp") -> Path:
    """A new empty folder beside ``path``, named after it, with the mode ``mkdir`` gives: ``tempfile.mkdtemp``
    minus its 0700."""
    for name in _names(Path(path), suffix):
        try:
            os.mkdir(name, 0o777)
            return name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name beside it", str(path))


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Write ``path`` whole or not at all: the block writes to the yielded file object (``open``'s ``mode``, "wb" or
    "w"), a new sibling made by :func:`temp_file_beside`; when the block ends the file is flushed to disk and renamed
    over ``path``. On any error or interrupt the sibling is removed and an earlier ``path`` stays as it was. The
    folder must exist."""
    fd, tmp = temp_file_beside(path)  # the mode of an ordinary file, not mkstemp's 0600
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


@contextmanager
def atomic_write_path(path: str | Path) -> Iterator[str]:
    """:func:`atomic_write` for a writer that takes a file name (safetensors' ``save_file``): the block writes the
    yielded name; then the file gets back the ordinary mode (a writer may put its own file, created 0600, in its
    place: safetensors 0.8 does), is flushed to disk and renamed over ``path``; on any error it is removed."""
    fd, tmp = temp_file_beside(path)
    ordinary_mode = os.fstat(fd).st_mode & 0o7777
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, ordinary_mode)
        with open(tmp, "r+b") as f:  # write access: some systems flush only files open for writing
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: str) -> None:
    if os.path.exists(tmp):
        os.remove(tmp)
