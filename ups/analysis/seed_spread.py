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
