"""A run session: seeding, the local record and its W&B mirror, opened and closed together.

The session holds the run's lock (``ups/runlock.py``) from before the folder is created or
reopened until its status is final, so a run folder has one writer. An interrupt (SIGINT, or
SIGTERM turned into one by the CLI) marks the run ``interrupted`` and says how to resume.

Under torchrun only rank 0 writes: the other ranks get a session on the same run folder whose
writes are no-ops and whose W&B mirror is off (``ups/distributed.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ups.distributed import SINGLE, World, broadcast
from ups.records import (
    RunNotFoundError,
    RunRecord,
    new_run_id,
    require_folder,
    require_writable,
)
from ups.repro import seed_everything
from ups.runlock import run_lock
from ups.schema import UpsConfig
from ups.tracking import WandbMirror, best_val_summary


class RunInterruptedError(RuntimeError):
    """Training was interrupted (SIGINT/SIGTERM); the run is marked ``interrupted``."""


@dataclass
class RunSession:
    """What a stage needs to report: the config, the record and the mirror."""

    cfg: UpsConfig
    record: RunRecord
    mirror: WandbMirror
    world: World = SINGLE

    @property
    def writes(self) -> bool:
        """Whether this process writes the run's files (rank 0 only)."""
        return self.world.is_main

    def log(self, stage: str, epoch: int, **values: Any) -> None:
        """One history row, written locally and mirrored as ``<stage>/<key>`` (rank 0)."""
        if not self.writes:
            return
        self.record.log(stage, epoch, **values)
        self.mirror.log({f"{stage}/{k}": v for k, v in values.items()} | {f"{stage}/epoch": epoch})

    def finish_metrics(self, metrics: dict[str, Any]) -> None:
        if not self.writes:
            return
        self.record.update_metrics(metrics)
        self.mirror.summary(metrics | best_val_summary(metrics))


@contextmanager
def open_session(
    cfg: UpsConfig, run_dir: str | Path | None = None, resume: bool = False, world: World = SINGLE
) -> Iterator[RunSession]:
    """Seed everything, create (or, with ``resume``, reopen) the run folder and its mirror;
    mark the run finished or failed when the block ends. Other ranks than 0 join the folder
    rank 0 opened and write nothing."""
    seed_everything(cfg.seed, cfg.deterministic, cfg.threads)
    if resume and run_dir is None:
        raise ValueError("resuming needs the run folder")
    if not world.is_main:
        record = RunRecord(Path(broadcast(None, world)))
        yield RunSession(cfg, record, WandbMirror.off(), world)
        return
    path = Path(run_dir) if run_dir else Path(cfg.paths.runs) / new_run_id(cfg)
    check_run_path(path, resume)
    path.mkdir(parents=True, exist_ok=True)  # the lock lives inside the folder it guards
    with run_lock(path, "train --resume" if resume else "train"):
        record = RunRecord.open(cfg, path) if resume else RunRecord.create(cfg, path)
        record.update_run(world_size=world.size)
        broadcast(str(record.path), world)
        yield from _supervise(RunSession(cfg, record, WandbMirror(cfg, record), world))


def check_run_path(path: Path, resume: bool) -> None:
    """Refuse, before any work, a run path that is a file, a resumed folder that does not exist,
    or a folder this process cannot write."""
    require_folder(path)
    if resume and not path.is_dir():
        raise RunNotFoundError(f"{path} is not a run folder (no such folder)")
    require_writable(path)


def _supervise(session: RunSession) -> Iterator[RunSession]:
    """Yield the session; record how the block ended (finished, interrupted or failed)."""
    record = session.record
    try:
        yield session
    except KeyboardInterrupt:
        record.update_run(status="interrupted", error="interrupted by a signal")
        session.mirror.finish(exit_code=130)
        raise RunInterruptedError(
            f"interrupted; resume with `ups train --resume {record.path}`"
        ) from None
    except BaseException as err:
        record.update_run(status="failed", error=f"{type(err).__name__}: {err}")
        session.mirror.finish(exit_code=1)
        raise
    record.update_run(status="finished")
    session.mirror.finish(exit_code=0)
