"""Read an offline wandb run back from its run folder, for tests.

wandb (0.31) ships no Python reader for its ``run-<id>.wandb`` files (the old ``wandb.sdk.internal.datastore`` is
gone), but the format is stable and documented by its own code: a 7-byte header (``:W&B``, magic 0xBEE1, version
0), then LevelDB-log framing (32 KiB blocks; each chunk has a 7-byte header: CRC32, little-endian length, type
FULL=1 / FIRST=2 / MIDDLE=3 / LAST=4; a block's tail shorter than a header is zero padding) around serialized
``wandb.proto.wandb_internal_pb2.Record`` messages. Decoding with wandb's own protobuf classes gives the run as
wandb will upload it: the run record (name, group, config), every history row, artifacts and files.
"""

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

BLOCK = 32768
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path):
    """Every Record of a .wandb file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), (ident, magic, version)
    pos, parts = 7, []
    while pos + CHUNK_HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < CHUNK_HEADER:  # zero padding at a block's end
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + CHUNK_HEADER])
        if kind == 0 and length == 0:  # padding (a file still being written)
            pos += left
            continue
        assert kind in (FULL, FIRST, MIDDLE, LAST), (pos, kind)
        if pos + CHUNK_HEADER + length > len(data):  # the writer's last chunk is not on disk yet
            return
        parts.append(data[pos + CHUNK_HEADER:pos + CHUNK_HEADER + length])
        pos += CHUNK_HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(parts))
            parts = []
            yield record


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


@dataclass
class OfflineRun:
    folder: Path
    run_id: str
    name: str = ""
    group: str = ""
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)  # one dict per logged step, values decoded from JSON
    artifacts: list[dict] = field(default_factory=list)  # {name, type, metadata, files: {name: local_path}}

    def column(self, key: str) -> list[tuple[int, object]]:
        """(step, value) of every history row that has ``key``."""
        return [(row["_step"], row[key]) for row in self.history if key in row]


def finished_records(path: Path, timeout_s: float = 60.0) -> list:
    """The records of a finished run's file. wandb's service process writes the file through a buffer and may
    still be flushing it when ``run.finish()`` has returned (seen on a loaded machine: a file holding only its
    header), so wait for the run's ``exit`` record, then read it all."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = list(records(path)) if path.is_file() else []
        if any(r.WhichOneof("record_type") == "exit" for r in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def read_offline_run(run_dir: Path) -> OfflineRun:
    """The one offline wandb run under ``run_dir``/wandb, whose id is in ``run_dir``/wandb_id.txt."""
    run_id = (Path(run_dir) / "wandb_id.txt").read_text().strip()
    folders = list((Path(run_dir) / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(folders) == 1, list((Path(run_dir) / "wandb").iterdir())
    run = OfflineRun(folders[0], run_id)
    found = finished_records(folders[0] / f"run-{run_id}.wandb")
    assert any(r.WhichOneof("record_type") == "exit" for r in found), f"{folders[0]}: the run never finished"
    for record in found:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.name, run.group = record.run.display_name, record.run.run_group
            run.config.update({_key(u): json.loads(u.value_json) for u in record.run.config.update})
        elif kind == "config":
            run.config.update({_key(u): json.loads(u.value_json) for u in record.config.update})
        elif kind == "history":
            row = {}
            for item in record.history.item:
                value = json.loads(item.value_json)
                row[_key(item)] = value
                if isinstance(value, dict):  # media (images, histograms): wandb-core flattens them, older wandb not
                    row.update({f"{_key(item)}/{k}": v for k, v in value.items()})
            # wandb-core writes both; the old Python writer only the item
            row.setdefault("_step", record.history.step.num)
            run.history.append(row)
        elif kind == "artifact":
            a = record.artifact
            run.artifacts.append({"name": a.name, "type": a.type, "metadata": json.loads(a.metadata or "{}"),
                                  "files": {e.path: e.local_path for e in a.manifest.contents}})
    return run
