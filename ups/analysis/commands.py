"""What ``ups analyze`` and ``ups compare`` do, importable: read the sources, analyse, and
return the report (Markdown, or JSON with ``as_json``), or, with ``out``, write it there with
its PNG plots beside it and return a line saying where.

``out`` is a file (``*.md`` / ``*.json``) or a folder (``analysis.md``, ``compare.md``, ...);
plots are ``<report stem>_<plot>.png`` in the same folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ups import atomic
from ups.analysis import plots
from ups.analysis.analyze import analyze
from ups.analysis.compare import compare
from ups.analysis.report import analysis_markdown, comparison_markdown
from ups.analysis.sources import open_one, open_runs

REPORT_SUFFIXES = (".md", ".json")


def analyze_command(
    spec: str, out: str | None = None, as_json: bool = False, split: str | None = None
) -> str:
    view = open_one(spec)
    result = analyze(view, split)
    text = _dumps(result) if as_json else analysis_markdown(result)
    if out is None:
        return text
    report = write_report(Path(out), "analysis", text, as_json)
    written = [_plot_path(report, "loss_curves")]
    plots.plot_loss_curves(written[0], [view])
    return _written(f"analysis of {view.name}", report, written)


def compare_command(
    specs: Sequence[str], out: str | None = None, as_json: bool = False, split: str = "test"
) -> str:
    views = open_runs(specs)
    result = compare(views, split)
    text = _dumps(result) if as_json else comparison_markdown(result)
    if out is None:
        return text
    report = write_report(Path(out), "compare", text, as_json)
    names = [v.name for v in views]
    written = [_plot_path(report, p) for p in ("loss_curves", "metric_strips", "correlations")]
    plots.plot_loss_curves(written[0], views)
    plots.plot_metric_strips(written[1], result["metrics"], names)
    plots.plot_correlation_heatmap(written[2], result["correlations"])
    return _written(f"comparison of {len(views)} runs", report, written)


def write_report(out: Path, stem: str, text: str, as_json: bool) -> Path:
    """Write ``text`` to ``out`` (a report file) or ``out/<stem>.md|json``; returns the file."""
    report = (
        out if out.suffix in REPORT_SUFFIXES else out / f"{stem}{'.json' if as_json else '.md'}"
    )
    report.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(report, text)
    return report


def _plot_path(report: Path, name: str) -> Path:
    return report.with_name(f"{report.stem}_{name}.png")


def _dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2) + "\n"


def _written(what: str, report: Path, written: list[Path]) -> str:
    return f"{what} written to {report}; plots: {', '.join(p.name for p in written)}\n"
