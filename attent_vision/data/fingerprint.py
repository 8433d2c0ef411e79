"""What a run trains on, in a form its checkpoints carry: the training set's fingerprint.

A checkpoint continues a run on the data it was trained on. A file replaced, added or removed in between would
make the resumed run mix two datasets without a word (and a new sample count breaks the teacher's score table).
So each checkpoint records the training samples' files, in sample order, by path relative to the data root and
size, and either their content or their modification time:

- a dataset of at most CONTENT_LIMIT bytes in all (the embedded synthetic data, small folders) by content (a
  CRC-32 of each file's bytes): a cache regenerated on another node, or a copy that did not keep the files' times,
  is still the same data;
- a larger one by modification time: one ``stat`` per file, nothing read (ImageNet's 3.8 M files cannot be read
  at every start).

The record keeps the sample and file counts, the total size, a SHA-256 over the whole list (what is compared:
equal means the same data), and a CRC-32 per file of its path, and of its whole entry (8 bytes a file: 30 MB for
ImageNet's 1.28 M samples x 3 modalities), only to say which files changed when the digests differ.

Any dataset whose ``samples`` list its files, beside the ``root`` they are relative to, works: the pretraining folder
(``Sample.paths``), the fine-tuning datasets (a path, a tuple of path and label, a dict of paths per modality), a
pretraining dataset kind's own sample source (data/pretrain/source.py says what it may offer). One without them has
no fingerprint: nothing is compared.
"""

import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

CONTENT_LIMIT = 64 << 20  # bytes: up to this total, files are compared by content (a read of 64 MB at start)
_CHUNK = 1 << 20


def sample_files(sample) -> list[Path]:
    """The files of one dataset sample, in a fixed order: a path; a tuple, list or dict holding paths (labels
    beside them are skipped); or an object with a ``paths`` dict (the pretraining folder's ``Sample``)."""
    if isinstance(sample, Path):
        return [sample]
    if isinstance(sample, dict):
        items = list(sample.values())  # modality order, the same in every scan
    elif isinstance(sample, (tuple, list)):
        items = list(sample)
    elif isinstance(getattr(sample, "paths", None), dict):
        items = list(sample.paths.values())
    else:
        return []
    return [path for item in items for path in sample_files(item)]


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:  # a file outside the root (a symlinked split): its own path
        return path.as_posix()


def _crc32s(texts: list[bytes]) -> torch.Tensor:
    return torch.from_numpy(np.array([zlib.crc32(t) for t in texts], dtype=np.uint32).view(np.int32))


def _file_crc(path: Path) -> int | str:
    crc = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                crc = zlib.crc32(chunk, crc)
    except OSError:  # unreadable: the loader names it (or skips it) when it gets there; here it is just a state
        return "unreadable"
    return crc


def _size_and_time(path: Path) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:  # gone or unreachable since the scan: recorded as such, reported by the loader
        return -1, -1
    return st.st_size, st.st_mtime_ns


@dataclass
class DataFingerprint:
    """``record`` is what a checkpoint stores; ``paths`` (relative to ``root``, in file order) name changed files."""

    record: dict
    paths: list[str]
    root: Path

    def change_from(self, saved: dict) -> str | None:
        """None when ``saved`` (an earlier run's ``record``) describes the same files; else what changed, in words:
        the sample count, files added (the first named), removed, or changed (the first named)."""
        now = self.record
        if saved.get("digest") == now["digest"]:
            return None
        parts = []
        if saved.get("samples") != now["samples"]:
            parts.append(f"sample count {saved.get('samples')} -> {now['samples']}")
        old = dict(zip(saved["names"].tolist(), saved["contents"].tolist()))
        names, contents = now["names"].tolist(), now["contents"].tolist()
        added = [i for i, name in enumerate(names) if name not in old]
        removed = len(set(old) - set(names))
        if added:
            parts.append(f"{len(added)} file(s) added, first: {self.paths[added[0]]}")
        if removed:
            parts.append(f"{removed} file(s) removed")
        if saved.get("compared_by") != now["compared_by"]:  # one side by content, the other by time
            parts.append(f"total size {saved.get('bytes')} -> {now['bytes']} bytes")
        else:
            changed = [i for i, (name, content) in enumerate(zip(names, contents))
                       if name in old and old[name] != content]
            if changed:
                how = "content" if now["compared_by"] == "content" else "size or modification time"
                parts.append(f"{len(changed)} file(s) changed ({how}), first: {self.paths[changed[0]]}")
        return "; ".join(parts) or "the files are listed in another order"


def fingerprint_samples(samples: list, root: str | Path) -> DataFingerprint:
    """The fingerprint of ``samples`` (a dataset's ``samples`` list), paths taken relative to ``root`` so that a
    dataset moved elsewhere is still the same."""
    root = Path(root)
    files = [(_relative(Path(path), root), path, *_size_and_time(path))
             for sample in samples for path in sample_files(sample)]
    total = sum(max(size, 0) for _, _, size, _ in files)
    by_content = total <= CONTENT_LIMIT
    whole = hashlib.sha256(f"{len(samples)} samples\n".encode())
    names, entries = [], []
    for rel, path, size, mtime in files:
        stamp = f"crc {_file_crc(path)}" if by_content else f"mtime {mtime}"
        entry = f"{rel}\0{size}\0{stamp}\n".encode()
        whole.update(entry)
        names.append(rel.encode())
        entries.append(entry)
    record = {"samples": len(samples), "files": len(files), "bytes": total,
              "compared_by": "content" if by_content else "time", "digest": whole.hexdigest(),
              "names": _crc32s(names), "contents": _crc32s(entries)}
    return DataFingerprint(record, [rel for rel, *_ in files], root)


def fingerprint_dataset(dataset) -> DataFingerprint | None:
    """The fingerprint of a dataset with ``samples`` and ``root`` (every folder dataset here); None for one
    without them (nothing to compare)."""
    samples, root = getattr(dataset, "samples", None), getattr(dataset, "root", None)
    if samples is None or root is None:
        return None
    return fingerprint_samples(samples, root)
