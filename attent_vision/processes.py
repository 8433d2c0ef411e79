"""Whether a process recorded by pid (a run folder's lock holder, a cache folder's writer) still runs on this host."""

import os


def process_runs(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (another user's process counts: it exists)."""
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        return True
    return True
