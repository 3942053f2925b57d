"""Read an offline W&B run (``offline-run-*/run-*.wandb``) back without network or wandb's sync.

The file is wandb's header (``:W&B`` + magic + version, 7 bytes) followed by a LevelDB-style
log: 32 KiB blocks of records ``crc32c(4) | length(2, LE) | type(1) | payload``, where a payload
is a serialised ``wandb_internal_pb2.Record``. Checksums are not verified here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HEADER_SIZE, RECORD_HEADER_SIZE, BLOCK_SIZE = 7, 7, 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def find_offline_runs(root: str | Path) -> list[Path]:
    """All ``run-*.wandb`` files below ``root`` (e.g. a ups run folder), oldest first."""
    return sorted(Path(root).rglob("offline-run-*/run-*.wandb"))


def read_offline_run(path: str | Path) -> dict[str, Any]:
    """{"config": nested dict, "history": [row dicts], "summary": dict, "group": str,
    "job_type": str, "exit_code": int, None while no exit was recorded} of one .wandb file."""
    from wandb.proto import wandb_internal_pb2  # optional service: imported on use

    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    run: dict[str, Any] = {"group": "", "job_type": "", "exit_code": None}
    for payload in _payloads(Path(path)):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            config.update(_items(record.run.config.update))
            run.update(group=record.run.run_group, job_type=record.run.job_type)
        elif kind == "exit":
            run["exit_code"] = record.exit.exit_code
        elif kind == "config":
            config.update(_items(record.config.update))
        elif kind == "history":
            history.append(_items(record.history.item))
        elif kind == "summary":
            summary.update(_items(record.summary.update))
    config.pop("_wandb", None)
    return {"config": config, "history": history, "summary": summary, **run}


def wait_for_exit(path: str | Path, timeout: float = 30.0) -> bool:
    """Wait until the .wandb file at ``path`` holds its exit record (offline ``finish()`` can
    return before wandb-core has flushed it); True once it does, False at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if Path(path).is_file() and read_offline_run(path)["exit_code"] is not None:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def _items(items: Any) -> dict[str, Any]:
    out = {}
    for item in items:
        key = item.key or "/".join(item.nested_key)
        out[key] = json.loads(item.value_json)
    return out


def _payloads(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file (bad header)")
    pos, parts = HEADER_SIZE, []
    while pos + RECORD_HEADER_SIZE <= len(data):
        left_in_block = BLOCK_SIZE - pos % BLOCK_SIZE
        if left_in_block < RECORD_HEADER_SIZE:
            pos += left_in_block  # block trailer padding
            continue
        length = int.from_bytes(data[pos + 4 : pos + 6], "little")
        kind = data[pos + 6]
        if pos + RECORD_HEADER_SIZE + length > len(data):
            return  # a torn last record: wandb-core is still writing it
        payload = data[pos + RECORD_HEADER_SIZE : pos + RECORD_HEADER_SIZE + length]
        pos += RECORD_HEADER_SIZE + length
        if kind == FULL:
            yield payload
        elif kind == FIRST:
            parts = [payload]
        elif kind == MIDDLE:
            parts.append(payload)
        elif kind == LAST:
            yield b"".join(parts + [payload])
        else:
            pos += left_in_block - RECORD_HEADER_SIZE - length  # zero padding: skip the block rest
