"""Rollout metrics in physical units, as docs/design.md ("Metrics") defines them.

A base module: training stages validate with it and ``ups eval`` reports with it.

Every function takes predicted frames ``pred`` and true frames ``true`` of shape (B, T, X)
(trajectories, predicted frames with the given frame excluded, grid points) and, where needed,
the given initial frame ``u0`` of shape (B, X). Inputs are float64 numpy arrays in the physical
units of u. nRMSE, violation fractions and the max-principle violation are dimensionless
ratios; percentages say so; RMSE is in the units of u.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

from ups.physics.invariants import energy, max_abs, total_variation

HORIZONS = {"nrmse_h25": 0.25, "nrmse_h50": 0.5, "nrmse_h100": 1.0}
GROWTH_TOLERANCE = 1e-6  # relative increase of E or TV still counted as round-off
# The keys of :func:`rollout_metrics`, in its order: the one home of the suite's names.
SUITE_KEYS = (
    "nrmse",
    "nrmse_ci_low",
    "nrmse_ci_high",
    "nrmse_step1",
    *HORIZONS,
    "rmse",
    "conservation_gap",
    "energy_violations",
    "tv_violations",
    "max_principle_violation",
)


def _check(pred: np.ndarray, true: np.ndarray) -> None:
    if pred.shape != true.shape or pred.ndim != 3:
        raise ValueError(f"pred and true must both be (B, T, X); got {pred.shape}, {true.shape}")
    if pred.shape[1] < 1:
        raise ValueError(f"need at least one predicted frame; got pred {pred.shape}")


def _check_rollout(pred: np.ndarray, u0: np.ndarray) -> None:
    if pred.ndim != 3 or u0.shape != (pred.shape[0], pred.shape[2]):
        raise ValueError(f"pred must be (B, T, X) and u0 (B, X); got {pred.shape}, {u0.shape}")
    if pred.shape[1] < 1:
        raise ValueError(f"need at least one predicted frame; got pred {pred.shape}")


def nrmse_per_trajectory_step(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(B, T): ``sqrt(mean_x (p-u)^2) / sqrt(mean_x u^2)`` per trajectory and frame."""
    _check(pred, true)
    err = np.sqrt(np.mean((pred - true) ** 2, axis=-1))
    return err / np.sqrt(np.mean(true**2, axis=-1))


def pdebench_nrmse(pred: np.ndarray, true: np.ndarray, given: int) -> float:
    """PDEBench's ``metric_func`` nRMSE under its protocol: ``given`` true frames, then ``pred``
    (B, T - given, X) for the rest of ``true`` (B, T, X); the mean over all T frames of the
    trajectory-mean nRMSE, the given frames counting at zero error (docs/design.md)."""
    per_frame = nrmse_per_trajectory_step(pred, true[:, given:]).mean(axis=0)  # (T - given,)
    return float(per_frame.sum() / true.shape[1])


def nrmse(pred: np.ndarray, true: np.ndarray) -> float:
    """PDEBench's nRMSE: the mean over trajectories and frames of the per-frame ratio."""
    return float(np.mean(nrmse_per_trajectory_step(pred, true)))


def nrmse_per_step(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(T,): nRMSE of each predicted frame, averaged over trajectories."""
    return np.mean(nrmse_per_trajectory_step(pred, true), axis=0)


def nrmse_at_horizons(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """nRMSE (mean over trajectories) at the first predicted frame and at 25/50/100% of T.

    The frame for fraction ``f`` is the ``ceil(f*T)``-th predicted one (1-based), so index
    ``ceil(f*T) - 1``; keys ``nrmse_step1``, ``nrmse_h25``, ``nrmse_h50``, ``nrmse_h100``.
    """
    per_step = nrmse_per_step(pred, true)  # (T,)
    steps = len(per_step)
    result = {"nrmse_step1": float(per_step[0])}
    for key, fraction in HORIZONS.items():
        result[key] = float(per_step[int(np.ceil(fraction * steps)) - 1])
    return result


def rmse(pred: np.ndarray, true: np.ndarray) -> float:
    """Root mean squared error over everything, in the units of u."""
    _check(pred, true)
    return float(np.sqrt(np.mean((pred - true) ** 2)))


def conservation_gap(pred: np.ndarray, u0: np.ndarray) -> float:
    """Percent: ``100 * mean_b max_t |mean_x p_bt - mean_x u_b0| / rms_x(u_b0)``.

    Zero for a rollout that conserves mass; invariant under periodic shifts, a common nonzero
    scaling of ``pred`` and ``u0`` and reordering of trajectories.
    """
    return float(np.mean(conservation_gap_per_trajectory(pred, u0)))


def conservation_gap_per_trajectory(pred: np.ndarray, u0: np.ndarray) -> np.ndarray:
    """(B,) percent: each trajectory's term of :func:`conservation_gap`."""
    _check_rollout(pred, u0)
    drift = np.abs(np.mean(pred, axis=-1) - np.mean(u0, axis=-1, keepdims=True))  # (B, T)
    rms0 = np.sqrt(np.mean(u0**2, axis=-1))  # (B,)
    return 100.0 * np.max(drift, axis=1) / rms0


def _growth_fraction(quantity, pred: np.ndarray, u0: np.ndarray) -> float:
    """Fraction of the B*T transitions of ``[u0, p_1 .. p_T]`` where ``quantity`` grows."""
    _check_rollout(pred, u0)
    values = quantity(np.concatenate([u0[:, None], pred], axis=1))  # (B, T+1)
    grew = values[:, 1:] > values[:, :-1] * (1 + GROWTH_TOLERANCE)
    return float(np.mean(grew))


def energy_violations(pred: np.ndarray, u0: np.ndarray) -> float:
    """Fraction of predicted steps with ``E(p_{t+1}) > E(p_t) (1 + 1e-6)``, ``p_0 = u0``.

    ``E = mean_x(u^2)/2``; T transitions per trajectory, so a value in [0, 1].
    """
    return _growth_fraction(energy, pred, u0)


def tv_violations(pred: np.ndarray, u0: np.ndarray) -> float:
    """Fraction of predicted steps whose periodic total variation grows (as energy_violations)."""
    return _growth_fraction(total_variation, pred, u0)


def max_principle_violation(pred: np.ndarray, u0: np.ndarray) -> float:
    """``mean_b max(0, max_{t,x}|p_b| - max_x|u_b0|) / max_x|u_b0|`` (dimensionless)."""
    _check_rollout(pred, u0)
    bound = max_abs(u0)  # (B,)
    overshoot = np.maximum(np.max(max_abs(pred), axis=1) - bound, 0.0)
    return float(np.mean(overshoot / bound))


def ttc_improvement(nrmse_base: float, nrmse_ttc: float) -> float:
    """Percent: ``100 * (base - ttc) / base``; positive when TTC lowers the nRMSE."""
    if not nrmse_base > 0:
        raise ValueError(f"nrmse_base must be > 0, got {nrmse_base}")
    return float(100.0 * (nrmse_base - nrmse_ttc) / nrmse_base)


def bootstrap_ci(
    values: np.ndarray, seed: int, confidence: float = 0.95, n_resamples: int = 2000
) -> tuple[float, float]:
    """Bootstrap (BCa) interval of the mean of per-trajectory ``values`` (B,), seeded.

    With fewer than two values, or all equal, there is nothing to resample: (mean, mean).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape {values.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    mean = float(np.mean(values))
    # Also the non-finite case: a NaN mean is the honest report, and scipy would warn.
    if len(values) < 2 or not np.isfinite(mean) or np.ptp(values) == 0:
        return mean, mean
    result = scipy.stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def rollout_metrics(
    pred: np.ndarray, true: np.ndarray, u0: np.ndarray, seed: int = 0
) -> dict[str, float]:
    """The flat metric suite of a rollout (stable keys, written to metrics.json).

    ``nrmse`` with its bootstrap interval over trajectories (``nrmse_ci_low``/``_high``), the
    horizon nRMSEs, ``rmse``, ``conservation_gap`` (percent) and the physics violations.
    """
    _check(pred, true)
    _check_rollout(pred, u0)
    per_trajectory = np.mean(nrmse_per_trajectory_step(pred, true), axis=1)  # (B,)
    low, high = bootstrap_ci(per_trajectory, seed)
    return {
        "nrmse": float(np.mean(per_trajectory)),
        "nrmse_ci_low": low,
        "nrmse_ci_high": high,
        **nrmse_at_horizons(pred, true),
        "rmse": rmse(pred, true),
        "conservation_gap": conservation_gap(pred, u0),
        "energy_violations": energy_violations(pred, u0),
        "tv_violations": tv_violations(pred, u0),
        "max_principle_violation": max_principle_violation(pred, u0),
    }
