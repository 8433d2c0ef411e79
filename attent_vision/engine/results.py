"""results.json: the machine-readable record of a run, rewritten atomically after every epoch."""

import json
import os
import tempfile
from pathlib import Path


def write_json_atomic(data: dict, path: str | Path) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False, default=float)
        f.write("\n")
    os.replace(tmp, path)


def read_results(path: str | Path) -> dict:
    with open(path) as f:
        return json.load(f)
