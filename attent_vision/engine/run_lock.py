"""One run per run folder: an exclusive lock on ``<run>/.lock`` for as long as a run uses the folder.

Two runs started into one folder would interleave checkpoints and overwrite each other's results. The lock is an
``flock`` on the file, so the operating system releases it when its holder dies however it dies (kill -9, node
failure on a local disk); the file keeps the holder's pid, host and start time for the message a second run gets.
A lock file left by a process that is gone is taken over with a warning. (On network file systems flock must be
supported by the mount, as on Lustre with ``-o flock``; without it the lock cannot protect the folder.)
"""

import fcntl
import json
import logging
import os
import socket
import time
from contextlib import suppress
from pathlib import Path

from ..errors import UserError
from ..storage import writing

log = logging.getLogger(__name__)


class RunFolderInUse(UserError):
    """Another live process holds the run folder."""


class RunFolderLock:
    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / ".lock"
        self.file = None

    def acquire(self) -> "RunFolderLock":
        with writing(self.path):  # a read-only run folder or a full disk: one line naming the folder, no traceback
            self.path.parent.mkdir(parents=True, exist_ok=True)
            file = open(self.path, "a+")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder(file)
            file.close()
            raise RunFolderInUse(
                f"run folder {self.path.parent} is in use by pid {holder.get('pid', '?')} on {holder.get('host', '?')} "
                f"(since {holder.get('started', '?')}); wait for that run to end, or give this one another "
                "hydra.run.dir") from None
        previous = self._holder(file)
        if previous.get("pid") and previous.get("pid") != os.getpid():
            log.warning("run folder %s was last held by pid %s on %s, which ended without releasing it; taking it "
                        "over", self.path.parent, previous.get("pid"), previous.get("host"))
        try:
            with writing(self.path):
                file.seek(0)
                file.truncate()
                json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": time.strftime("%Y-%m-%d %H:%M:%S")}, file)
                file.flush()
        except BaseException:
            with suppress(OSError):  # closing releases the lock (the unwritten buffer fails again: ignore it)
                file.close()
            raise
        self.file = file
        return self

    def release(self) -> None:
        """Unlock and empty the lock file (an empty file means: released cleanly)."""
        if self.file is None:
            return
        self.file.seek(0)
        self.file.truncate()
        self.file.flush()
        fcntl.flock(self.file.fileno(), fcntl.LOCK_UN)
        self.file.close()
        self.file = None

    @staticmethod
    def _holder(file) -> dict:
        file.seek(0)
        try:
            return json.loads(file.read() or "{}")
        except ValueError:
            return {}
