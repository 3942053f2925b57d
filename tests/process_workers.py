"""Worker functions for the ``ups.processes`` tests: spawn imports them by module name."""

import os
import time
from pathlib import Path


def record_pid_then_sleep(folder: str, index: int) -> int:
    """Write this process's PID to ``folder/<index>.pid`` and sleep far past any test."""
    Path(folder, f"{index}.pid").write_text(str(os.getpid()))
    time.sleep(600)
    return index


def square(x: int) -> int:
    return x * x
