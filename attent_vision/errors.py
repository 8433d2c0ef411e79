"""User-facing errors.

Every error a user can fix by changing their input derives from :class:`UserError`. Entry points catch it and
print its one-line message (what was wrong, where, what to do) instead of a traceback, then exit with status 2.
"""


class UserError(Exception):
    """An error caused by the user's input (config, files, checkpoints), with an actionable message."""

    exit_code = 2  # the entry points' exit status for it


class ConfigError(UserError):
    """A config value is unknown, out of range or inconsistent with another one."""


class DataError(UserError):
    """A dataset folder or file is missing, unreadable or inconsistent."""


class StorageError(UserError):
    """A file or folder cannot be read or written: the disk is full, the folder is read-only, or this user may not
    read or write it."""


class CheckpointError(UserError):
    """A checkpoint file is missing, unreadable or does not fit the model."""


class UnreadableCheckpoint(CheckpointError):
    """A file that is not a readable torch checkpoint (truncated, corrupt or foreign); ``reason`` says why."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason
