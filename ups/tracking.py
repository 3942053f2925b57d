"""Mirror a run record to Weights & Biases (offline by default).

The local record is the source of truth; W&B is optional. wandb is imported only when a
mirror starts, and if it is missing or fails to start the run goes on with one warning.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from ups.config import config_hash, to_dict
from ups.records import RunRecord
from ups.schema import UpsConfig
from ups.wandb_offline import wait_for_exit


class WandbMirror:
    """Forwards config and metrics to a W&B run; a no-op when disabled or unavailable."""

    def __init__(self, cfg: UpsConfig, record: RunRecord, job: str = "train"):
        """``job`` names this W&B run within the record's group (train, eval-test, ...)."""
        self._run = None
        self.mode = cfg.tracking.wandb.mode
        if self.mode == "disabled":
            return
        try:
            self._run = _start(cfg, record, job)
        except Exception as err:  # noqa: BLE001 - any wandb failure must not kill the run
            warnings.warn(
                f"W&B mirror disabled: could not start wandb in {self.mode} mode "
                f"({type(err).__name__}: {err}); "
                f"the local run record in {record.path} is complete.",
                RuntimeWarning,
                stacklevel=2,
            )

    @classmethod
    def off(cls) -> WandbMirror:
        """A mirror that forwards nothing (e.g. on training ranks other than 0)."""
        mirror = cls.__new__(cls)
        mirror._run, mirror.mode = None, "disabled"
        return mirror

    @property
    def active(self) -> bool:
        return self._run is not None

    def log(self, values: dict[str, Any], step: int | None = None) -> None:
        if self._run is not None:
            self._run.log(values, step=step)

    def summary(self, values: dict[str, Any]) -> None:
        if self._run is not None:
            self._run.summary.update(values)

    def finish(self, exit_code: int = 0) -> None:
        """Close the W&B run; offline, return only once its file is complete on disk."""
        if self._run is None:
            return
        run, self._run = self._run, None
        local_file = Path(run.dir).parent / f"run-{run.id}.wandb"
        run.finish(exit_code=exit_code)
        if self.mode == "offline" and not wait_for_exit(local_file):
            warnings.warn(
                f"W&B offline file {local_file} was not complete 30 s after finish(); "
                "the local run record is complete regardless",
                RuntimeWarning,
                stacklevel=2,
            )


def best_val_summary(metrics: dict[str, Any]) -> dict[str, float]:
    """Flat ``<stage>/best_val_<key>`` copies of each stage's selected val metrics (from the
    per-stage entries of metrics.json): a W&B sweep's metric must be a top-level summary key,
    and ``ups sweep --local`` reads its objective under the same name."""
    return {
        f"{stage}/best_val_{key}": value
        for stage, entry in metrics.items()
        if isinstance(entry, dict) and isinstance(entry.get("best_val"), dict)
        for key, value in entry["best_val"].items()
    }


def wandb_config(cfg: UpsConfig) -> dict[str, Any]:
    """What ``wandb.init`` receives: the full nested resolved config plus its hash and seed."""
    return {**to_dict(cfg), "config_hash": config_hash(cfg), "seed": cfg.seed}


def _start(cfg: UpsConfig, record: RunRecord, job: str) -> Any:
    import wandb  # optional service: imported only when mirroring is on

    wb = cfg.tracking.wandb
    # Under a W&B sweep agent the run id is the agent's (WANDB_RUN_ID), or the sweep loses it.
    in_sweep = "WANDB_SWEEP_ID" in os.environ
    wandb_dir = record.path / "wandb"
    wandb_dir.mkdir(parents=True, exist_ok=True)
    return wandb.init(
        project=wb.project,
        entity=wb.entity,
        mode=wb.mode,
        dir=str(wandb_dir),
        name=record.path.name if job == "train" else f"{record.path.name}-{job}",
        id=None if in_sweep else _wandb_id(record, job),
        group=record.path.name,
        job_type=job,
        config=wandb_config(cfg),
        settings=wandb.Settings(silent=True, console="off"),
        reinit="finish_previous",
    )


def _wandb_id(record: RunRecord, job: str) -> str:
    # W&B ids allow letters, digits, '-' and '_' only, up to 64 characters.
    name = record.path.name if job == "train" else f"{record.path.name}-{job}"
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
    return safe[-64:]
