"""A multirun job's folder named by what the job was asked to do: ``0_selection=soft,trainer.seed=1``.

Hydra's default ``${hydra.job.num}_<name>`` gives ``0_default``, ``1_default``, ...: nothing in the folder says
which job is which. ``hydra.sweep.subdir`` in conf/train/train.yaml and conf/finetune/finetune.yaml
calls the ``job_folder`` resolver with the job's number, its overrides as Hydra joins them
(``${hydra.job.override_dirname}``: sorted; separators and ``exclude_keys`` under ``hydra.job.config``) and the
name to use when there are none. What a value may hold that a folder name must not (``/`` in
``experiment=table3/full``, brackets and quotes of list values, spaces, non-ASCII) is replaced. A name over
``MAX_FOLDER_CHARS`` (one path component may not exceed 255 bytes; long names are unreadable in a listing) is
shortened first the way a reader would: keys and paths to their last part, long values to their start and end
(``data.root=/data/sets/nyuv2,trainer.seed=1`` -> ``root=nyuv2,seed=1``), because the key a sweep varies often sorts
last; then it is cut, and ends with a short hash of the full overrides. The job number in front keeps every folder
of a sweep apart.

Registered when attent_vision/train.py and attent_vision/finetune.py are imported: also in the processes where a
launcher (submitit, joblib) runs a job, since they import the task function's module.
"""

import hashlib
import re

from omegaconf import OmegaConf

RESOLVER = "job_folder"
MAX_FOLDER_CHARS = 80  # the whole folder name; longer ones are cut and end with ``-<hash>``
HASH_CHARS = 8
_SLASHES = re.compile(r"[/\\]")  # a path inside a value: experiment=table3/full -> experiment=table3-full
_ENCLOSING = re.compile(r"[\[\]{}()'\"]")  # list / dict brackets and quotes of values: dropped
# Anything else a shell or another file system trips on becomes "_"; ASCII only, so characters are bytes (the limit).
_UNSAFE = re.compile(r"[^\w.,=+\-~@%^]", re.ASCII)
LONG_VALUE_CHARS = 28  # shortened names: a longer value keeps its first 10 and last 16 characters (id, suffix)
_PATH_FOLDERS = re.compile(r"[^,=\[\]{}()'\"]*/")  # /data/sets/nyuv2 -> nyuv2, [a,table3/full] -> [a,full]
_OPENING, _CLOSING = "[{(", "]})"


def safe_name(text: str) -> str:
    """``text`` with the characters a folder name must not (or should not) hold replaced."""
    return _UNSAFE.sub("_", _ENCLOSING.sub("", _SLASHES.sub("-", text)))


def split_items(overrides: str) -> list[str]:
    """Hydra's ``override_dirname`` split into its overrides: at the commas outside brackets and quotes."""
    items, depth, quote, start = [], 0, None, 0
    for i, char in enumerate(overrides):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in _OPENING or char in _CLOSING:
            depth += 1 if char in _OPENING else -1
        elif char == "," and depth == 0:
            items.append(overrides[start:i])
            start = i + 1
    return items + [overrides[start:]]


def shortened_value(value: str) -> str:
    """A value without its paths' folders; a long one (each element of a list) cut to its start and end."""
    value = _PATH_FOLDERS.sub("", value)
    if len(value) > 1 and value[0] in _OPENING and value[-1] in _CLOSING:
        return value[0] + ",".join(map(shortened_value, split_items(value[1:-1]))) + value[-1]
    return value if len(value) <= LONG_VALUE_CHARS else f"{value[:10]}..{value[-(LONG_VALUE_CHARS - 12):]}"


def shortened(overrides: str) -> str:
    """``overrides`` as a reader would shorten them: each key to its last part, each path to its last part, each
    long value to its start and end: ``data.root=/data/sets/nyuv2,trainer.seed=1`` -> ``root=nyuv2,seed=1``."""
    items = []
    for item in split_items(overrides):
        key, sep, value = item.partition("=")
        prefix = key[: len(key) - len(key.lstrip("+~"))]  # +key=value, ~key
        items.append(f"{prefix}{key.rpartition('.')[2]}{sep}{shortened_value(value)}")
    return ",".join(items)


def job_folder(num, overrides: str, fallback: str) -> str:
    """The folder name of multirun job ``num``: ``<num>_<overrides>``, or ``<num>_<fallback>`` (the experiment or
    task name) when the job has no overrides of its own; at most ``MAX_FOLDER_CHARS`` characters: a longer name is
    shortened, cut and ended with a hash of ``overrides`` (so two long names that agree after the cut still differ)."""
    text = str(overrides or fallback)
    name = f"{num}_{safe_name(text)}"
    if len(name) <= MAX_FOLDER_CHARS:
        return name
    short = f"{num}_{safe_name(shortened(text))}"
    digest = hashlib.sha1(text.encode()).hexdigest()[:HASH_CHARS]
    return f"{short[: MAX_FOLDER_CHARS - HASH_CHARS - 1]}-{digest}"


def register_job_folder_resolver() -> None:
    """Make ``${job_folder:num,overrides,fallback}`` available to configs (idempotent: a re-import replaces it)."""
    OmegaConf.register_new_resolver(RESOLVER, job_folder, replace=True)
