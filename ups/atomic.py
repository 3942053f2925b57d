"""Crash-safe file writes: write a temp file beside the target, fsync, then rename over it.

A reader therefore sees either the old file or the new one, never a half-written one. Files
get the user's umask (``mkstemp`` alone would make every file 0600), so a shared cache or run
folder is readable by the team. A failed write is an :class:`ArtifactWriteError` naming the
file (a full disk otherwise surfaces as a bare ``No space left on device``).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


class ArtifactWriteError(OSError):
    """A file could not be written (full disk, read-only folder); names the file and the fix."""


def umask() -> int:
    """The process umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path: str | Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise _write_error(path, err) from err
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _write_error(path, err) from err
        raise
    _fsync_dir(path.parent)


def _write_error(path: Path, err: OSError) -> ArtifactWriteError:
    return ArtifactWriteError(
        err.errno,
        f"could not write {path}: {err.strerror or err}; free space or fix the folder's "
        "permissions, then run the command again (the previous file, if any, is intact)",
    )


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def write_npz(path: str | Path, arrays: dict[str, Any]) -> None:
    """Atomically write numpy arrays as an uncompressed ``.npz`` (no pickles)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


def torch_save(obj: Any, path: str | Path) -> None:
    """Atomically ``torch.save`` a checkpoint (tensors, plain containers, numbers, strings)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getvalue())


def append_line(path: str | Path, line: str) -> None:
    """Append one line and fsync it, so a crash loses at most the line being written."""
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line.rstrip("\n") + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise _write_error(Path(path), err) from err


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_dir(parent: str | Path, prefix: str) -> Path:
    """A fresh hidden folder in ``parent`` (to build a new state beside the old one), with the
    user's umask instead of ``mkdtemp``'s 0700."""
    try:
        Path(parent).mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    except OSError as err:
        raise _write_error(Path(parent), err) from err
    tmp.chmod(0o777 & ~umask())
    return tmp
