"""PNG plots of an analysis or a comparison (matplotlib with the Agg backend, imported on use)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ups.analysis import keys
from ups.analysis.analyze import series
from ups.analysis.compare import shown_metrics
from ups.analysis.view import RunView

CURVES = ((keys.TRAIN_LOSS, "train loss"), (keys.VAL_SCORE, "val score (selection)"))


def plot_loss_curves(path: Path, views: Sequence[RunView]) -> None:
    """Per stage (columns): training loss (top) and validation score (bottom) against epoch,
    one line per run, log scale."""
    plt = _pyplot()
    stages = list(dict.fromkeys(s for v in views for s in v.stages))
    fig, axes = plt.subplots(
        len(CURVES), max(1, len(stages)), figsize=(3.4 * max(1, len(stages)), 5.6), squeeze=False
    )
    for col, stage in enumerate(stages):
        for row, (key, label) in enumerate(CURVES):
            ax = axes[row][col]
            for view in views:
                epochs, values = series(view.rows(stage), key)
                ax.plot(epochs, values, marker=".", label=view.name)
            ax.set(yscale="log", xlabel="epoch", ylabel=label, title=stage if row == 0 else None)
    axes[0][-1].legend(fontsize=7)
    _save(fig, path, plt)


def plot_metric_strips(path: Path, metrics: dict[str, Any], names: Sequence[str]) -> None:
    """One panel per shown metric of a comparison: each run's value as a labelled point, with
    the mean and +-1 std (ddof = 1) as lines."""
    plt = _pyplot()
    shown = shown_metrics(metrics)
    cols = min(4, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, shown, strict=False):
        col = metrics[metric]
        held = [n for n in names if col["values"].get(n) is not None]
        ax.scatter([col["values"][n] for n in held], np.zeros(len(held)), zorder=3)
        for n in held:
            ax.annotate(
                n,
                (col["values"][n], 0),
                textcoords="offset points",
                xytext=(0, 6),
                fontsize=6,
                ha="center",
                rotation=45,
            )
        if col["std"] is not None:
            for x, style in (
                (col["mean"], "-"),
                (col["mean"] - col["std"], ":"),
                (col["mean"] + col["std"], ":"),
            ):
                ax.axvline(x, color="grey", linestyle=style, linewidth=0.8)
        ax.set(title=f"{metric} (CV {_cv(col)})", yticks=[])
        ax.title.set_fontsize(8)
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    _save(fig, path, plt)


def plot_correlation_heatmap(path: Path, correlations: list[dict[str, Any]]) -> None:
    """Pearson and Spearman between each stage's final training loss (rows) and each eval
    metric (columns) across runs; undefined cells are blank and marked n/a."""
    plt = _pyplot()
    stages = list(dict.fromkeys(r["stage"] for r in correlations))
    metrics = list(dict.fromkeys(r["metric"] for r in correlations))
    fig, axes = plt.subplots(
        1, 2, figsize=(2 + 2.4 * max(1, len(metrics)), 1.5 + 0.6 * len(stages)), squeeze=False
    )
    for ax, kind in zip(axes[0], ("pearson", "spearman"), strict=True):
        grid = np.full((len(stages), len(metrics)), np.nan)
        for r in correlations:
            if r[kind] is not None:
                grid[stages.index(r["stage"]), metrics.index(r["metric"])] = r[kind]
        image = ax.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
        for (i, j), value in np.ndenumerate(grid):
            ax.text(
                j,
                i,
                "n/a" if np.isnan(value) else f"{value:+.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if abs(value) > 0.6 else "black",  # NaN compares False: black
            )
        ax.set_xticks(range(len(metrics)), metrics, rotation=35, ha="right", fontsize=7)
        ax.set_yticks(range(len(stages)), [f"{s} loss" for s in stages], fontsize=7)
        ax.set_title(f"{kind}: final training loss vs eval metric", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.04)
    _save(fig, path, plt)


def _pyplot():
    import matplotlib  # heavy and only needed for plots: imported on use

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _cv(col: dict[str, Any]) -> str:
    return "n/a" if col["cv_pct"] is None else f"{col['cv_pct']:.1f}%"


def _save(fig: Any, path: Path, plt: Any) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
