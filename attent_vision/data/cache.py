"""The cache folder of the embedded datasets, and writing a dataset folder exactly once.

Folder names carry a fingerprint of the generation settings, so changing a setting writes a new folder and never
reuses a stale one. Writing goes to a temporary sibling folder (``<name>.<8 hex>.tmp``) that is renamed into place
when complete, so a final-named folder is always complete when it appears; its completion marker (written last)
says so.

What an interruption or damage leaves behind, and what the next call does about it:

- A SIGTERM while writing (``scancel``, a pod eviction; training's own handlers are not installed yet) removes the
  temporary folder, then ends the process by SIGTERM as before. A SIGKILL, a crash or a power cut cannot clean up;
  the next item is for those.
- Stale temporary folders are removed at the start of every :func:`write_once` (so at the start of every run),
  whichever settings they were for. Each one holds a ``.writer`` file (pid, host) while it is written. Concurrent
  writers (ranks, parallel test sessions, other jobs on a shared cache) must keep theirs, and a live writer adds
  files every few milliseconds, so a temporary folder is stale when nothing in it was modified for
  :data:`DEAD_WRITER_QUIET_S` and its writer is a process of this host that no longer runs, or, where that cannot
  be told (another host, no readable ``.writer``), when nothing in it was modified for :data:`STALE_AFTER_S`. A
  writer that still runs on this host is never disturbed, however quiet (a suspended job). The quiet time guards
  the pid test against hosts that share a name but not their processes (containers with their own pid space).
- A final-named folder without its marker was damaged after it was written (a file deleted by hand, a partial copy
  or restore): it is moved aside to ``<name>.damaged-<time>-<pid>``, with one warning naming both, and written anew.
"""

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from ..atomic_files import temp_dir_beside
from ..processes import process_runs
from ..storage import CACHE_FOLDER, reading, writing

log = logging.getLogger(__name__)

CACHE_ENV = "ATTENT_VISION_CACHE"
WRITER_FILE = ".writer"  # in a temporary folder while it is written: {"pid", "host"} of its writer
STALE_AFTER_S = 30 * 60  # a temporary folder of an unknown writer untouched this long is abandoned
DEAD_WRITER_QUIET_S = 2 * 60  # ... and one whose writer process here has ended, untouched this long
_TEMP_NAME = re.compile(r"^synthetic-.+\.[0-9a-f]{8}\.tmp$")  # temp_dir_beside's names for our cache folders


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
    test sessions) each write their own copy; the first rename wins and the others are discarded. Stale temporary
    folders and a damaged ``root`` are dealt with as the module docstring says."""
    with reading(root, "data.cache_dir"):  # an unreadable cache is "cannot read", never a run folder's problem
        remove_stale_temp_folders(root.parent)
        if (root / marker).is_file():
            return root
    tmp, terminated = None, _SigtermCleansUp()
    try:
        with terminated, writing(root, CACHE_FOLDER):  # a full or read-only cache names data.cache_dir
            root.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_dir_beside(root)  # readable like any folder (mkdtemp would make it 0700 after the rename)
            _write_writer_file(tmp)
            write(tmp)
            (tmp / WRITER_FILE).unlink()  # the finished folder carries no trace of its writer
            _rename_into_place(tmp, root, marker)
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        terminated.deliver()  # after the clean-up: a SIGTERM received meanwhile ends the process now
    return root


def _rename_into_place(tmp: Path, root: Path, marker: str) -> None:
    try:
        os.rename(tmp, root)
        return
    except OSError as e:
        if (root / marker).is_file():  # another process finished first: theirs is identical, keep it
            return
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR) or not os.path.lexists(root):
            raise
    _move_damaged_aside(root, marker)
    try:
        os.rename(tmp, root)
    except OSError:
        if not (root / marker).is_file():  # (a concurrent writer may have replaced it in the meantime)
            raise


def _move_damaged_aside(root: Path, marker: str) -> None:
    """``root`` exists without ``marker``: only damage after the fact makes that (it appears whole, by rename)."""
    aside = root.with_name(f"{root.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    try:
        os.rename(root, aside)
    except FileNotFoundError:  # a concurrent writer moved it aside first
        return
    log.warning("the dataset cache folder %s lacked its completion marker '%s' (damaged after it was written), so "
                "it was written anew; the damaged copy was moved to %s: delete it when you no longer need it",
                root, marker, aside)


def _write_writer_file(tmp: Path) -> None:
    (tmp / WRITER_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))


def remove_stale_temp_folders(cache: Path) -> list[Path]:
    """Remove the temporary folders in ``cache`` that no writer will finish (see the module docstring); returns
    them. Best effort: a cache that cannot be listed or a folder that cannot be removed is left as it is."""
    try:
        with os.scandir(cache) as entries:
            candidates = [Path(e.path) for e in entries if _TEMP_NAME.match(e.name) and e.is_dir(follow_symlinks=False)]
    except OSError:  # no cache yet, or one we cannot list: nothing to clean here
        return []
    removed = []
    for folder in candidates:
        if _is_stale(folder):
            shutil.rmtree(folder, ignore_errors=True)  # (a concurrent call may be removing it too)
            if not folder.exists():
                log.info("removed %s, left by an interrupted generation of the synthetic data", folder)
                removed.append(folder)
    return removed


def _is_stale(folder: Path) -> bool:
    try:
        writer = json.loads((folder / WRITER_FILE).read_text())
        pid, host = int(writer["pid"]), str(writer["host"])
    except (OSError, ValueError, KeyError, TypeError):  # no (readable) writer file: judge by age alone
        pid = host = None
    here = host == socket.gethostname()
    if here and process_runs(pid):
        return False
    newest = _newest_mtime(folder)
    return newest is not None and time.time() - newest > (DEAD_WRITER_QUIET_S if here else STALE_AFTER_S)


def _newest_mtime(folder: Path) -> float | None:
    """The newest modification time in ``folder``'s tree; None when the folder went away meanwhile."""
    try:
        newest = folder.stat().st_mtime
    except OSError:
        return None
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            try:
                newest = max(newest, os.lstat(os.path.join(parent, name)).st_mtime)
            except OSError:
                pass
    return newest


class _Terminated(BaseException):
    """Raised by the SIGTERM handler inside :func:`write_once` to unwind to its clean-up."""


class _SigtermCleansUp:
    """While the block runs, a SIGTERM that would kill the process outright (the default handler) unwinds to
    write_once's clean-up instead; :meth:`deliver` then ends the process by SIGTERM after all, so that whoever sent
    it sees the same exit. A handler someone else installed (a launcher's, training's) is left in charge, and
    outside the main thread (where handlers cannot be set) the stale-folder clean-up is what remains."""

    def __init__(self):
        self.installed = self.armed = self.received = False

    def __enter__(self):
        try:
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, self._handle)
                self.installed = self.armed = True
        except ValueError:  # not the main thread
            pass
        return self

    def __exit__(self, kind, value, traceback) -> bool:
        self.armed = False  # from here on (the clean-up) a SIGTERM is only noted, never raised into it
        return kind is _Terminated  # swallowed: deliver() re-sends the signal once the clean-up is done

    def _handle(self, signum, frame) -> None:
        self.received = True
        if self.armed:
            self.armed = False  # a second SIGTERM must not interrupt the unwinding either
            raise _Terminated()

    def deliver(self) -> None:
        """Put the default handler back and, if a SIGTERM came, end the process with it."""
        if not self.installed:
            return
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self.installed = False
        if self.received:
            log.warning("received SIGTERM while writing the synthetic data: removed the partial copy, stopping")
            os.kill(os.getpid(), signal.SIGTERM)  # the default handler: the process ends here
            raise SystemExit(128 + signal.SIGTERM)  # (not reached where SIGTERM ends the process)
