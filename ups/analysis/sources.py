"""Where runs come from, read into one :class:`RunView`.

A source is a local run folder (the source of truth), an offline W&B folder (``RUN/wandb``,
an ``offline-run-*`` folder or its ``.wandb`` file), ``wandb:ENTITY/PROJECT/RUN_ID`` (public
API), a seeds summary (``seeds.json`` or its folder: the ``seed<N>`` runs beside it) or a glob
of any of these. Every source maps to the local key schema of :mod:`ups.analysis.keys`.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ups.analysis.view import AnalysisInputError, RunView, incomplete_reasons
from ups.config import to_dict
from ups.records import RunNotFoundError, read_run
from ups.summary import SUMMARY_FILE, load_summary

WANDB_PREFIX = "wandb:"


def load_local(path: Path) -> RunView:
    """A local run folder (``ups.records.read_run``), complete or not."""
    run = read_run(path)
    config = to_dict(run.config)
    missing = [s for s in run.config.stages if not (path / "checkpoints" / f"{s}.pt").is_file()]
    status = run.info.get("status", "unknown")
    reasons = incomplete_reasons(config, run.history, run.metrics, status, missing)
    if status == "failed" and run.info.get("error"):
        reasons = (f"{reasons[0]} ({run.info['error']})", *reasons[1:])
    return RunView(
        name=path.name,
        source=f"local:{path}",
        config=config,
        history=run.history,
        metrics=run.metrics,
        status=status,
        info=run.info,
        incomplete=reasons,
    )


def open_sources(spec: str) -> list[RunView]:
    """Every run one command-line source names (see the module docstring)."""
    from ups.analysis import wandb_source  # wandb-specific: imported when a source needs it

    if spec.startswith(WANDB_PREFIX):
        return [wandb_source.load_api(spec[len(WANDB_PREFIX) :])]
    path = Path(spec)
    if not path.exists() and glob.has_magic(spec):
        matches = sorted(glob.glob(spec))
        if not matches:
            raise RunNotFoundError(f"{spec}: the pattern matches nothing")
        return unique([view for match in matches for view in open_sources(match)])
    if (path / "run.json").is_file() and (path / "config.yaml").is_file():
        return [load_local(path)]
    summary = path / SUMMARY_FILE if path.is_dir() else path
    if summary.name == SUMMARY_FILE and summary.is_file():
        return [load_local(run) for run in seed_runs(summary)]
    if path.exists() and wandb_source.offline_files(path):
        return wandb_source.load_offline(path)
    raise RunNotFoundError(
        f"{spec} is not a run folder (run.json + config.yaml), an offline W&B run, a "
        f"{SUMMARY_FILE} or {WANDB_PREFIX}ENTITY/PROJECT/RUN_ID"
        + ("" if path.exists() else ": no such file or folder")
    )


def unique(views: Sequence[RunView]) -> list[RunView]:
    """Each source once (a glob may match a seed run and the seeds.json listing it)."""
    first: dict[str, RunView] = {}
    for view in views:
        first.setdefault(view.source, view)
    return list(first.values())


def open_runs(specs: Sequence[str]) -> list[RunView]:
    """The runs of every source, in order, each once, names made unique (``name#2``, ...)."""
    views = unique([view for spec in specs for view in open_sources(spec)])
    seen: dict[str, int] = {}
    out = []
    for view in views:
        seen[view.name] = seen.get(view.name, 0) + 1
        if seen[view.name] > 1:
            view = replace(view, name=f"{view.name}#{seen[view.name]}")
        out.append(view)
    return out


def open_one(spec: str) -> RunView:
    """Exactly one run, or an error saying how many the source holds."""
    views = open_sources(spec)
    if len(views) != 1:
        names = ", ".join(v.name for v in views)
        raise AnalysisInputError(f"{spec} holds {len(views)} runs ({names}); name one of them")
    return views[0]


def seed_runs(summary: Path) -> list[Path]:
    """The run folders of a ``seeds.json``: ``seed<N>`` beside it, for each of its seeds."""
    runs = [summary.parent / f"seed{s}" for s in load_summary(summary).seeds]
    absent = [str(r) for r in runs if not r.is_dir()]
    if absent:
        raise RunNotFoundError(f"{summary} lists seeds whose runs are missing: {absent}")
    return runs
