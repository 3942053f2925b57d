"""What a headline's spread between seeds is made of: the recipe, or the test set's size.

A seed's headline is the mean of one error per trajectory of the evaluated split. Between
seeds each trajectory's error moves (another model); averaged over ``B`` trajectories that
movement leaves a noise in the seed means that falls as ``1 / sqrt(B)``. What is left is the
recipe's own shift between seeds, which no test set averages away. With errors ``e[s, i]`` of
seed ``s`` on trajectory ``i``,

    var_s(mean_i e[s, i]) = shift + noise / B,   noise = mean_i var_s(e[s, i]),

(a two-way layout: the trajectory's own difficulty cancels between seeds; ``noise`` holds the
shift too, a 1/B share that is neglected). ``shift`` is estimated by the difference and may come
out negative by chance: it is then reported as is and floored at 0 for predictions.
"""

from __future__ import annotations

import math

import numpy as np


def decompose(errors: np.ndarray) -> dict[str, float]:
    """(seeds S >= 2, trajectories B) errors -> the seed means' CV and its parts, in percent of
    the grand mean: ``cv_pct`` (observed, ddof = 1), ``noise_cv_pct`` (what per-trajectory noise
    alone gives at this B), ``shift_cv_pct`` (signed: negative when the observed spread is below
    the noise's), and ``grand_mean``."""
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 2 or errors.shape[0] < 2 or errors.shape[1] < 1:
        raise ValueError(f"errors must be (seeds >= 2, trajectories >= 1), got {errors.shape}")
    grand = float(errors.mean())
    between = float(errors.mean(axis=1).var(ddof=1))
    noise = float(errors.var(axis=0, ddof=1).mean())
    shift = between - noise / errors.shape[1]
    return {
        "grand_mean": grand,
        "cv_pct": 100 * math.sqrt(between) / grand,
        "noise_cv_pct": 100 * math.sqrt(noise / errors.shape[1]) / grand,
        "shift_cv_pct": math.copysign(100 * math.sqrt(abs(shift)) / grand, shift),
    }


def predicted_cv_pct(parts: dict[str, float], trajectories: int, measured_on: int) -> float:
    """The CV (%) the same recipe is expected to show on ``trajectories`` per seed, from the
    ``decompose`` of ``measured_on`` trajectories (a negative shift counts as 0)."""
    shift = max(parts["shift_cv_pct"], 0.0) ** 2
    noise = parts["noise_cv_pct"] ** 2 * measured_on / trajectories
    return math.sqrt(shift + noise)


def decay_ratio(u: np.ndarray) -> np.ndarray:
    """True trajectories (N, T, X) -> (N,) last frame's rms over the first frame's: how far each
    field has dissipated by the end (1 = not at all; viscous Burgers only decays)."""
    rms = np.sqrt(np.mean(np.asarray(u, dtype=np.float64) ** 2, axis=-1))
    return rms[:, -1] / rms[:, 0]


def subset_spread(errors: np.ndarray, subset: np.ndarray) -> dict[str, float]:
    """What one group of trajectories does to the spread between seeds.

    errors (seeds S >= 2, trajectories B); subset (B,) bool, neither empty nor everything ->
    ``noise_share`` (the subset's part of ``sum_i var_s(e[s, i])``, the noise of
    :func:`decompose`), ``mean_in`` / ``mean_out`` (mean error on and off it), and ``cv_pct`` /
    ``cv_without_pct``: the seed means' CV with and without the subset.
    """
    errors, subset = np.asarray(errors, dtype=np.float64), np.asarray(subset, dtype=bool)
    if subset.shape != errors.shape[1:2] or subset.all() or not subset.any():
        raise ValueError(
            f"subset must be a (trajectories,) = {errors.shape[1:2]} mask selecting some but not"
            f" all trajectories; got shape {subset.shape} with {int(subset.sum())} selected"
        )
    variance = errors.var(axis=0, ddof=1)
    return {
        "noise_share": float(variance[subset].sum() / variance.sum()),
        "mean_in": float(errors[:, subset].mean()),
        "mean_out": float(errors[:, ~subset].mean()),
        "cv_pct": decompose(errors)["cv_pct"],
        "cv_without_pct": decompose(errors[:, ~subset])["cv_pct"],
    }
