"""PNG plots of an evaluation (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot_error_curves(path: Path, curves: Mapping[str, np.ndarray], dt: float) -> None:
    """nRMSE against rollout time, one line per mode; ``curves``: mode -> (S,)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for mode, curve in curves.items():
        ax.plot(dt * np.arange(1, len(curve) + 1), curve, label=mode)
    ax.set(xlabel="t", ylabel="nRMSE", yscale="log", title="nRMSE along the rollout")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_spacetime(path: Path, truth: np.ndarray, preds: Mapping[str, np.ndarray]) -> None:
    """Truth (S+1, X) and each mode's prediction (S, X) as x-t images on one colour scale."""
    plt = _pyplot()
    panels = {"truth": truth[1:], **preds}
    limit = float(np.abs(truth).max())
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 3), sharey=True)
    for ax, (name, field) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        image = ax.imshow(
            field,
            aspect="auto",
            origin="lower",
            cmap="RdBu_r",
            vmin=-limit,
            vmax=limit,
            extent=(0, 1, 1, len(field)),
        )
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("x")
    np.atleast_1d(axes)[0].set_ylabel("step")
    fig.colorbar(image, ax=axes, shrink=0.8)
    fig.savefig(path, dpi=90)
    plt.close(fig)
