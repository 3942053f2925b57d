"""Local run records: the source of truth for every run.

Layout of ``<runs>/<run_id>/``::

    config.yaml     resolved nested config (reloadable with ups.config.load_config)
    run.json        id, seed, config hash, environment fingerprint, status, timestamps
    history.jsonl   one JSON object per line: {"stage": ..., "epoch": ..., <metric>: ...}
    metrics.json    final metrics, flat keys
    checkpoints/    one file per stage, never overwritten by another stage

Every file is written atomically (history lines are appended and fsynced one at a time).
"""

from __future__ import annotations

import errno
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ups import atomic
from ups.config import (
    config_diff,
    config_hash,
    load_config,
    stage_keys,
    to_yaml,
    training_hash,
)
from ups.repro import environment_fingerprint
from ups.runlock import LOCK_FILE
from ups.schema import UpsConfig

STATUSES = ("running", "finished", "failed", "interrupted")


class RunMismatchError(ValueError):
    """An existing run folder belongs to another config."""


class RunNotFoundError(FileNotFoundError):
    """A path that is not a run folder."""


class RunUnfinishedError(RuntimeError):
    """A run whose training did not finish, asked for what only a finished run can give."""


class RunRecordError(ValueError):
    """A run record file (run.json, metrics.json, history.jsonl) is torn or not valid JSON."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def new_run_id(cfg: UpsConfig) -> str:
    """``<name>-s<seed>-<hash8>-<UTC time>``: readable, sortable, unique per start."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{time.time_ns() % 10**6:06d}"
    return f"{cfg.name}-s{cfg.seed}-{config_hash(cfg)[:8]}-{stamp}"


@dataclass
class RunRecord:
    """A writable handle on one run folder."""

    path: Path

    @classmethod
    def create(cls, cfg: UpsConfig, run_dir: str | Path | None = None) -> RunRecord:
        """Start a run folder (default ``<paths.runs>/<new id>``); refuses a non-empty folder."""
        path = Path(run_dir) if run_dir else Path(cfg.paths.runs) / new_run_id(cfg)
        require_folder(path)
        # The run's lock file (ups/runlock.py) may already be there: it is not a run's content.
        if path.exists() and any(p.name != LOCK_FILE for p in path.iterdir()):
            raise FileExistsError(f"run folder {path} exists and is not empty; resume it instead")
        path.mkdir(parents=True, exist_ok=True)
        atomic.write_text(path / "config.yaml", to_yaml(cfg))
        now = _now()
        atomic.write_json(
            path / "run.json",
            {
                "id": path.name,
                "seed": cfg.seed,
                "config_hash": config_hash(cfg),
                "environment": environment_fingerprint(cfg.device),
                "status": "running",
                "created": now,
                "updated": now,
            },
        )
        return cls(path)

    @classmethod
    def open(cls, cfg: UpsConfig, run_dir: str | Path) -> RunRecord:
        """Reopen an existing run folder to continue it; ``cfg`` must train what it trained."""
        path = Path(run_dir)
        if not (path / "run.json").is_file() or not (path / "config.yaml").is_file():
            raise RunNotFoundError(f"{path} is not a run folder (needs run.json and config.yaml)")
        require_same_training(path, cfg)
        record = cls(path)
        # The earlier failure is being dealt with; a new one is recorded.
        record.update_run(clear=("error",), status="running")
        # Temp files of writes a kill cut short: the lock says no writer is left to finish them.
        for orphan in record.checkpoint_dir.glob(".*.tmp"):
            orphan.unlink()
        return record

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint_path(self, stage: str) -> Path:
        return self.checkpoint_dir / f"{stage}.pt"

    def log(self, stage: str, epoch: int, **values: Any) -> dict[str, Any]:
        """Append one history row for ``stage`` at ``epoch``; returns the row."""
        row = {"stage": stage, "epoch": epoch, **values}
        atomic.append_line(self.path / "history.jsonl", json.dumps(row, allow_nan=False))
        return row

    def truncate_history(self, stage: str, from_epoch: int) -> None:
        """Drop ``stage`` rows at ``from_epoch`` or later (written after the checkpoint a resume
        starts from), so a resumed run's history equals an uninterrupted one's."""
        path = self.path / "history.jsonl"
        rows = [
            r for r in read_history(path) if not (r["stage"] == stage and r["epoch"] >= from_epoch)
        ]
        atomic.write_text(path, "".join(json.dumps(r, allow_nan=False) + "\n" for r in rows))

    def update_metrics(self, metrics: dict[str, Any]) -> None:
        """Merge ``metrics`` into metrics.json (later keys win)."""
        current = _read_json(self.path / "metrics.json", default={})
        atomic.write_json(self.path / "metrics.json", {**current, **metrics})

    def update_run(self, clear: tuple[str, ...] = (), **fields: Any) -> None:
        """Merge fields into run.json (e.g. ``status="finished"``), drop the keys in ``clear``,
        and stamp ``updated``."""
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {fields['status']!r}")
        info = {k: v for k, v in _read_json(self.path / "run.json").items() if k not in clear}
        atomic.write_json(self.path / "run.json", {**info, **fields, "updated": _now()})


@dataclass(frozen=True)
class RunData:
    """Everything a finished or crashed run left behind, read back."""

    path: Path
    config: UpsConfig
    info: dict[str, Any]
    history: list[dict[str, Any]]
    metrics: dict[str, Any]

    @property
    def status(self) -> str:
        return self.info["status"]


def read_run(path: str | Path) -> RunData:
    """Read a run folder back; a torn last history line (crash mid-write) is dropped, warned."""
    path = Path(path)
    if not (path / "run.json").is_file() or not (path / "config.yaml").is_file():
        raise RunNotFoundError(f"{path} is not a run folder (needs run.json and config.yaml)")
    return RunData(
        path=path,
        config=load_config(path / "config.yaml"),
        info=_read_json(path / "run.json"),
        history=read_history(path / "history.jsonl"),
        metrics=_read_json(path / "metrics.json", default={}),
    )


def read_history(path: Path) -> list[dict[str, Any]]:
    """Rows of a history.jsonl; only a torn *last* line is tolerated, anything else is an error."""
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number == len(lines):
                warnings.warn(f"{path}: dropped a torn last line ({err})", stacklevel=2)
                break
            raise RunRecordError(
                f"{path}:{number}: not valid JSON ({err}); only a torn last line is repaired: "
                "fix or delete that line"
            ) from err
    return rows


def run_status(path: str | Path) -> str:
    """The status run.json records: one of :data:`STATUSES`."""
    status = _read_json(Path(path) / "run.json").get("status")
    if status not in STATUSES:
        raise RunRecordError(f"{Path(path) / 'run.json'} records no valid status ({status!r})")
    return status


def require_same_training(path: Path, cfg: UpsConfig, way_out: str = "") -> UpsConfig:
    """The config the run at ``path`` was started under (its config.yaml), refused with
    :class:`RunMismatchError`, naming the keys, unless ``cfg`` trains the same (evaluation
    settings may differ). ``way_out`` ends the message."""
    recorded = load_config(path / "config.yaml")
    if training_hash(recorded) != training_hash(cfg):
        keys = config_diff(stage_keys(recorded, "*"), stage_keys(cfg, "*"))
        raise RunMismatchError(
            f"run {path} was started under another config; differing keys: {keys}{way_out}"
        )
    return recorded


def require_finished_run(path: str | Path) -> None:
    """Refuse a run whose status (run.json) is not ``finished``: its checkpoints are those of
    a training cut short (killed, interrupted, failed, or still going)."""
    status = run_status(path)
    if status != "finished":
        error = _read_json(Path(path) / "run.json").get("error")
        why = f": {error}" if error else ""
        raise RunUnfinishedError(
            f"run {path} is {status!r}{why}, not finished; finish it with "
            f"`ups train --resume {path}`, then evaluate it"
        )


def require_folder(path: Path) -> None:
    """Refuse a run path that exists but is not a folder (e.g. ``--run-dir`` naming a file)."""
    if path.exists() and not path.is_dir():
        raise RunNotFoundError(f"{path} is a file, not a run folder; pass a folder path")


def require_writable(path: Path) -> None:
    """Refuse a path under a folder this process cannot write (a read-only runs folder), naming
    the folder: checked before a command starts work, not when its first file is written."""
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise atomic.ArtifactWriteError(
            errno.EACCES,
            f"cannot write under {existing} (for {path}): make it writable, or pass another "
            "folder (--run-dir, or paths.runs=...)",
        )


def _read_json(path: Path, default: dict[str, Any] | None = None) -> dict[str, Any]:
    if not path.is_file():
        if default is not None:
            return dict(default)
        raise FileNotFoundError(f"{path} is missing")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunRecordError(
            f"{path} is torn or not valid JSON ({err}); restore it from a copy, or delete the "
            "run folder and train again"
        ) from err
    if not isinstance(data, dict):
        raise RunRecordError(f"{path} holds {type(data).__name__}, not a JSON object")
    return data
