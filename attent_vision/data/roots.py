"""Dataset roots: from the config, else from an environment variable, else an error that says how to set one."""

import os
from pathlib import Path

from ..errors import DataError


def resolve_root(root: str | Path | None, env_var: str, what: str, expected: str) -> Path:
    """``root`` if given, else ``$env_var``; raises DataError when neither is set or the folder does not exist.

    what: the dataset's name for messages; expected: what the folder should hold (e.g. "train/ and validation/").
    """
    if root is None or str(root) == "":
        root = os.environ.get(env_var) or None
    if root is None:
        raise DataError(f"no {what} folder given: set data.root=/path/to/it or the environment variable {env_var} "
                        f"(the folder that holds {expected})")
    path = Path(root).expanduser()
    if not path.is_dir():
        state = "is a file, not a folder" if path.exists() else "does not exist"
        raise DataError(f"{what} folder {path} {state}; set data.root (or ${env_var}) to the folder that "
                        f"holds {expected}")
    return path
