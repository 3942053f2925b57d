"""A run session: seeding, the local record and its W&B mirror, opened and closed together."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ups.records import RunRecord
from ups.repro import seed_everything
from ups.schema import UpsConfig
from ups.tracking import WandbMirror


@dataclass
class RunSession:
    """What a stage needs to report: the config, the record and the mirror."""

    cfg: UpsConfig
    record: RunRecord
    mirror: WandbMirror

    def log(self, stage: str, epoch: int, **values: Any) -> None:
        """One history row, written locally and mirrored as ``<stage>/<key>``."""
        self.record.log(stage, epoch, **values)
        self.mirror.log({f"{stage}/{k}": v for k, v in values.items()} | {f"{stage}/epoch": epoch})

    def finish_metrics(self, metrics: dict[str, Any]) -> None:
        self.record.update_metrics(metrics)
        self.mirror.summary(metrics)


@contextmanager
def open_session(
    cfg: UpsConfig, run_dir: str | Path | None = None, resume: bool = False
) -> Iterator[RunSession]:
    """Seed everything, create (or, with ``resume``, reopen) the run folder and its mirror;
    mark the run finished or failed when the block ends."""
    seed_everything(cfg.seed, cfg.deterministic, cfg.threads)
    if resume and run_dir is None:
        raise ValueError("resuming needs the run folder")
    record = RunRecord.open(cfg, run_dir) if resume else RunRecord.create(cfg, run_dir)
    session = RunSession(cfg, record, WandbMirror(cfg, record))
    try:
        yield session
    except BaseException as err:
        record.update_run(status="failed", error=f"{type(err).__name__}: {err}")
        session.mirror.finish(exit_code=1)
        raise
    record.update_run(status="finished")
    session.mirror.finish(exit_code=0)
