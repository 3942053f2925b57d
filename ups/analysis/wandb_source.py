"""W&B as a source: offline run files and the public API, mapped to the local key schema.

A ups run is a W&B *group*: the training job (history ``<stage>/<key>`` + ``<stage>/epoch``,
summary entry per stage) and one ``eval-<split>`` job per evaluated split (flat summary). Both
readers give :class:`WandbRun` objects; :func:`view_from_wandb` is the one mapping. A key the
source does not hold stays absent (reported missing), never 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ups.analysis import keys
from ups.analysis.view import AnalysisInputError, RunView, incomplete_reasons
from ups.wandb_offline import find_offline_runs, read_offline_run

# W&B run states (public API) -> ups run statuses.
STATES = {
    "finished": "finished",
    "failed": "failed",
    "crashed": "failed",
    "killed": "failed",
    "running": "running",
    "pending": "running",
}


@dataclass(frozen=True)
class WandbRun:
    """One W&B run as either reader gives it; ``state`` is an ups status."""

    job_type: str
    group: str
    config: dict[str, Any]
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    state: str


def offline_files(path: Path) -> list[Path]:
    """The ``run-*.wandb`` files at or below ``path`` (a file, an ``offline-run-*`` folder or
    any folder above them), oldest first."""
    if path.is_file():
        return [path] if path.suffix == ".wandb" else []
    return find_offline_runs(path) or sorted(path.glob("run-*.wandb"))


def load_offline(path: Path) -> list[RunView]:
    """One view per W&B group found at or below ``path``."""
    groups: dict[str, list[WandbRun]] = {}
    for file in offline_files(path):
        run = from_offline(read_offline_run(file), fallback_group=file.stem.removeprefix("run-"))
        groups.setdefault(run.group, []).append(run)
    return [view_from_wandb(runs, group, f"wandb-offline:{path}") for group, runs in groups.items()]


def from_offline(data: dict[str, Any], fallback_group: str) -> WandbRun:
    """A :func:`ups.wandb_offline.read_offline_run` result; no exit record means still running
    (or killed before it could write one)."""
    code = data["exit_code"]
    state = "running" if code is None else "finished" if code == 0 else "failed"
    return WandbRun(
        job_type=data["job_type"] or keys.WANDB_TRAIN_JOB,
        group=data["group"] or fallback_group,
        config=data["config"],
        history=data["history"],
        summary=data["summary"],
        state=state,
    )


def load_api(path: str) -> RunView:
    """``ENTITY/PROJECT/RUN_ID`` through the public API (network), with its group's runs."""
    if path.count("/") != 2 or not all(path.split("/")):
        raise AnalysisInputError(f"W&B sources are wandb:ENTITY/PROJECT/RUN_ID, got {path!r}")
    import wandb  # optional service: imported only for a wandb: source

    api = wandb.Api()
    run = api.run(path)
    members = (
        api.runs(f"{run.entity}/{run.project}", filters={"group": run.group})
        if run.group
        else [run]
    )
    return view_from_wandb([from_api(r) for r in members], run.group or run.id, f"wandb:{path}")


def from_api(run: Any) -> WandbRun:
    """A ``wandb.apis.public.Run`` (or anything with its attributes)."""
    return WandbRun(
        job_type=run.job_type or keys.WANDB_TRAIN_JOB,
        group=run.group or run.id,
        config=dict(run.config),
        history=list(run.scan_history()),
        summary=dict(run.summary_metrics),
        state=STATES.get(run.state.lower(), run.state.lower()),
    )


def view_from_wandb(runs: Sequence[WandbRun], name: str, source: str) -> RunView:
    """The local view of one group: training runs (several after a resume, oldest first)
    give config, history and stage metrics; ``eval-<split>`` runs give ``eval/<split>``."""
    train = [r for r in runs if r.job_type == keys.WANDB_TRAIN_JOB]
    evals = [r for r in runs if r.job_type.startswith(keys.WANDB_EVAL_JOB_PREFIX)]
    notes = ["checkpoints are not visible from W&B; completeness is judged by stage metrics"]
    if not train:
        notes.append("no training run in this W&B group: config from an eval run, no history")
    config = {k: v for k, v in (train or evals or runs)[-1].config.items() if k != "_wandb"}
    info = {"config_hash": config.pop("config_hash", None), "group": name}
    history = merge_history(r.history for r in train)
    metrics = {k: v for r in train for k, v in r.summary.items() if _is_stage_entry(k, v)}
    for run in evals:
        split = run.job_type.removeprefix(keys.WANDB_EVAL_JOB_PREFIX)
        flat, note = eval_summary(run, split)
        metrics[keys.eval_section(split)] = flat
        notes += [note] if note else []
    status = train[-1].state if train else "unknown"
    return RunView(
        name=name,
        source=source,
        config=config,
        history=history,
        metrics=metrics,
        status=status,
        info=info,
        incomplete=incomplete_reasons(config, history, metrics, status),
        notes=tuple(notes),
    )


def local_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The local history rows inside one W&B row: one per stage that logged ``<stage>/epoch``."""
    values = {k: v for k, v in row.items() if not k.startswith("_") and v is not None}
    stages = [k.split("/", 1)[0] for k in values if k.split("/", 1)[1:] == [keys.EPOCH]]
    out = []
    for stage in stages:
        prefix = keys.wandb_key(stage, "")
        fields = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
        out.append({keys.STAGE: stage, keys.EPOCH: fields.pop(keys.EPOCH), **fields})
    return out


def merge_history(histories: Iterable[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Local rows of successive W&B runs; a (stage, epoch) logged again (a resumed run redoes
    the epochs after its checkpoint) keeps its place and takes the later values."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for history in histories:
        for row in history:
            for local in local_rows(row):
                rows[(local[keys.STAGE], local[keys.EPOCH])] = local
    return list(rows.values())


def eval_summary(run: WandbRun, split: str) -> tuple[dict[str, Any], str | None]:
    """The flat eval metrics of an ``eval-<split>`` run (no note: nothing is left out).

    Keys logged per step (the TTC search series, ``<rule>_per_step/...``) are series, not
    final metrics: W&B's summary holds their last step, so they are not taken from it."""
    per_step = {k for row in run.history for k in row}
    flat = {
        k: v
        for k, v in run.summary.items()
        if not k.startswith(keys.WANDB_INTERNAL_PREFIX) and k not in per_step
    }
    return {"split": split, **flat}, None


def _is_stage_entry(key: str, value: Any) -> bool:
    return isinstance(value, dict) and not key.startswith(keys.WANDB_INTERNAL_PREFIX)
