"""The run's log file (``<run>/<job>.log``, configured in conf/shared/hydra/job_logging/console.yaml).

When the disk fills or the folder stops being writable during a run, Python's FileHandler prints a multi-line
"--- Logging error ---" report with a traceback for every later log line. This handler says what went wrong once,
in one line (storage.py), and leaves the log to the console from then on; the run's own error (a checkpoint
that cannot be written) follows as the usual one line.
"""

import logging
import sys
import time

from tqdm import tqdm

from ..storage import storage_error


class RunLogFile(logging.FileHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        problem = storage_error(sys.exc_info()[1], self.baseFilename)
        if problem is None:
            super().handleError(record)
            return
        self.setLevel(logging.CRITICAL + 1)  # no more writes to the file; the console handler carries on
        # tqdm.write: above a progress bar, if one is drawn, rather than glued to its end
        tqdm.write(f"[{time.strftime('%H:%M:%S')}][WARNING] {problem}; the log continues on the console only",
                   file=sys.stderr)
