"""Mirror a run record to Weights & Biases (offline by default).

The local record is the source of truth; W&B is optional, and its failures never stop a run:
wandb is imported only when a mirror starts; if it is missing, or cannot write in the run
folder, the mirror turns itself off with one warning; an online start that fails (a bad key, an
unreachable server) gives up after ``INIT_TIMEOUT_S`` and mirrors offline instead. Everything
wandb writes (its run files, and wandb-core's logs and caches) stays in ``<run>/wandb``.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ups.config import config_hash, to_dict
from ups.progress import say
from ups.records import RunRecord
from ups.schema import UpsConfig
from ups.wandb_offline import wait_for_exit

# wandb waits 90 s by default before a bad key or an unreachable server fails wandb.init; a
# healthy online start takes a few seconds, and a slow one only costs the live view (offline).
INIT_TIMEOUT_S = 15.0
# Where wandb and wandb-core would otherwise write in the home folder (~/.cache/wandb/logs,
# ~/.local/share/wandb) or the working dir (./artifacts): pointed into the mirror's folder. The
# config dir (WANDB_CONFIG_DIR) is only read, for the user's W&B host and settings: left alone.
WANDB_DIR_VARS = {
    "WANDB_CACHE_DIR": "cache",
    "WANDB_DATA_DIR": "data",
    "WANDB_ARTIFACT_DIR": "artifacts",
}


class WandbMirror:
    """Forwards config and metrics to a W&B run; a no-op when disabled or unavailable."""

    def __init__(self, cfg: UpsConfig, record: RunRecord, job: str = "train"):
        """``job`` names this W&B run within the record's group (train, eval-test, ...)."""
        self._run = None
        self.mode = cfg.tracking.wandb.mode
        if self.mode == "disabled":
            return
        try:
            import wandb  # optional service: imported only when mirroring is on
        except ImportError as err:
            self._turn_off(record, f"wandb is not installed ({err})")
            return
        folder = record.path / "wandb"
        try:
            _require_writable(folder)
        except OSError as err:
            self._turn_off(
                record, f"cannot write its folder {folder} ({type(err).__name__}: {err})"
            )
            return
        with _wandb_dirs(folder):
            self._run = self._start(wandb, cfg, record, job)

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
        import wandb

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
        # wandb-core outlives the run and keeps the log folder it started with; ended here, the
        # next mirror in this process (another seed's run) starts its own in its own folder.
        wandb.teardown()

    def _start(self, wandb: Any, cfg: UpsConfig, record: RunRecord, job: str) -> Any:
        """The started W&B run, or None (warned) if wandb cannot start; online falls back to
        offline. wandb.init re-raises whatever its internals raise (UsageError, CommError,
        OSError, ...), so each call is guarded by ``except Exception``, reported with its type."""
        if self.mode == "online":
            say(
                f"contacting W&B (project {cfg.tracking.wandb.project}; up to {INIT_TIMEOUT_S:g} s)"
            )
            try:
                return _init(wandb, cfg, record, job, "online")
            except Exception as err:  # noqa: BLE001 - see the docstring
                wandb.teardown()  # a half-started service must not outlive the failed start
                warnings.warn(
                    f"W&B online start failed ({type(err).__name__}: {err}); the run continues "
                    f"with an offline mirror in {record.path / 'wandb'} "
                    f"(upload it later with `wandb sync {record.path / 'wandb'}/offline-run-*`)",
                    RuntimeWarning,
                    stacklevel=3,
                )
                self.mode = "offline"
        try:
            return _init(wandb, cfg, record, job, self.mode)
        except Exception as err:  # noqa: BLE001 - see the docstring
            wandb.teardown()
            self._turn_off(record, f"could not start wandb ({type(err).__name__}: {err})")
            return None

    def _turn_off(self, record: RunRecord, why: str) -> None:
        """Warn that the mirror is off and why; the run goes on with its local record."""
        warnings.warn(
            f"W&B mirror disabled ({self.mode} mode): {why}; the run continues, and its local "
            f"run record in {record.path} is complete.",
            RuntimeWarning,
            stacklevel=3,
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


def _require_writable(folder: Path) -> None:
    """Create ``folder`` and write a scratch file in it, raising OSError if that fails: wandb-core
    writes there from its own process, where a failure would surface only in its log."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


@contextmanager
def _wandb_dirs(folder: Path) -> Iterator[None]:
    """Point wandb's cache, data and artifact folders into ``folder`` while a run starts (the
    wandb-core service it spawns keeps them), then restore the caller's environment."""
    saved = {var: os.environ.get(var) for var in WANDB_DIR_VARS}
    os.environ.update({var: str(folder / sub) for var, sub in WANDB_DIR_VARS.items()})
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _init(wandb: Any, cfg: UpsConfig, record: RunRecord, job: str, mode: str) -> Any:
    """``wandb.init`` of this record's run for ``job`` in ``mode``, writing under <run>/wandb."""
    wb = cfg.tracking.wandb
    # Under a W&B sweep agent the run id is the agent's (WANDB_RUN_ID), or the sweep loses it.
    in_sweep = "WANDB_SWEEP_ID" in os.environ
    return wandb.init(
        project=wb.project,
        entity=wb.entity,
        mode=mode,
        dir=str(record.path / "wandb"),
        name=record.path.name if job == "train" else f"{record.path.name}-{job}",
        id=None if in_sweep else _wandb_id(record, job),
        group=record.path.name,
        job_type=job,
        config=wandb_config(cfg),
        settings=wandb.Settings(silent=True, console="off", init_timeout=INIT_TIMEOUT_S),
        reinit="finish_previous",
    )


def _wandb_id(record: RunRecord, job: str) -> str:
    # W&B ids allow letters, digits, '-' and '_' only, up to 64 characters.
    name = record.path.name if job == "train" else f"{record.path.name}-{job}"
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
    return safe[-64:]
