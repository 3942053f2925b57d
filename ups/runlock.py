"""One writer per run folder: ``train``, ``train --resume`` and ``eval`` hold an exclusive
``fcntl.flock`` on ``<run>/.lock`` while they work, and a second one is refused, naming the
holder. The kernel drops the lock when its process dies (kill -9 included), so a stale lock
file never blocks a resume.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".lock"


class RunLockedError(RuntimeError):
    """Another process is writing this run folder."""


@contextmanager
def run_lock(run_dir: str | Path, command: str) -> Iterator[None]:
    """Hold the run's lock for the block; ``command`` (e.g. ``train``) is recorded as holder."""
    path = Path(run_dir) / LOCK_FILE
    # Opened without truncating, so a refused process never erases the holder's record.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(
                f"run {run_dir} is in use by {_holder(path)}; wait for it to end (or stop it), "
                "then run this again"
            ) from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": command}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({**holder, "since": time.strftime("%FT%T%z")}).encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder(path: Path) -> str:
    """``ups <command> (pid P on HOST, since T)`` from the lock file, as far as it says."""
    try:
        info = json.loads(path.read_text())
        return (
            f"`ups {info['command']}` (pid {info['pid']} on {info['host']}, since {info['since']})"
        )
    except (OSError, ValueError, KeyError):
        return "another process (its lock file says no more)"
