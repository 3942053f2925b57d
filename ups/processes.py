"""Run independent calls in spawned worker processes: the seeds of a gate, the solver's chunks.

spawn: each worker starts clean (no forked torch thread pools or open W&B handles). A SIGTERM (a
CI timeout, ``kill``) or Ctrl-C to this process terminates the workers as well, so no orphaned
worker goes on computing. Spawned workers import the caller's main module, so a script that
comes here (through ``run_seeds`` or by building a dataset) needs the
``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tqdm.auto import tqdm

from ups.progress import bars


def available_cpus() -> int:
    """The cores this process may run on (its affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_in_processes(
    fn: Callable[..., Any],
    args: Sequence[tuple],
    jobs: int,
    *,
    fresh: bool = True,
    desc: str | None = None,
) -> list[Any]:
    """``[fn(*a) for a in args]``, in order, in ``jobs`` worker processes (in this process,
    spawning none, when ``jobs`` <= 1).

    ``fresh``: one new process per call (a seed's whole run); otherwise the workers take call
    after call. ``desc``: label of a progress bar over the calls (none without one).
    """
    bar = functools.partial(tqdm, total=len(args), desc=desc, disable=not bars(desc is not None))
    if jobs <= 1:
        return list(bar(fn(*a) for a in args))
    context = multiprocessing.get_context("spawn")
    with _sigterm_raises(), context.Pool(jobs, maxtasksperchild=1 if fresh else None) as pool:
        results = list(bar(pool.imap(_apply, [(fn, a) for a in args])))
        # Let the idle workers exit by themselves: the terminate() of leaving the block would
        # kill them mid-shutdown, which sometimes leaks a semaphore (a warning at exit).
        pool.close()
        pool.join()
    return results


def _apply(task: tuple[Callable[..., Any], tuple]) -> Any:
    fn, a = task
    return fn(*a)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises SystemExit(143) in the main thread, so enclosing
    ``with`` blocks unwind (and a Pool terminates its workers) instead of the process vanishing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_on_sigterm(signum, frame):
        sys.exit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
