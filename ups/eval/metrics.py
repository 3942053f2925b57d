"""Rollout metrics in physical units, exactly as DESIGN.md defines them.

Every function takes predicted frames ``pred`` and true frames ``true`` of shape (B, T, X)
(trajectories, predicted frames with the given frame excluded, grid points) and, where needed,
the given initial frame ``u0`` of shape (B, X). Inputs are float64 numpy arrays.
"""

from __future__ import annotations

import numpy as np


def _check(pred: np.ndarray, true: np.ndarray) -> None:
    if pred.shape != true.shape or pred.ndim != 3:
        raise ValueError(f"pred and true must both be (B, T, X); got {pred.shape}, {true.shape}")


def nrmse_per_trajectory_step(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(B, T): ``sqrt(mean_x (p-u)^2) / sqrt(mean_x u^2)`` per trajectory and frame."""
    _check(pred, true)
    err = np.sqrt(np.mean((pred - true) ** 2, axis=-1))
    return err / np.sqrt(np.mean(true**2, axis=-1))


def nrmse(pred: np.ndarray, true: np.ndarray) -> float:
    """PDEBench's nRMSE: the mean over trajectories and frames of the per-frame ratio."""
    return float(np.mean(nrmse_per_trajectory_step(pred, true)))


def nrmse_per_step(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(T,): nRMSE of each predicted frame, averaged over trajectories."""
    return np.mean(nrmse_per_trajectory_step(pred, true), axis=0)


def rmse(pred: np.ndarray, true: np.ndarray) -> float:
    """Root mean squared error over everything, in the units of u."""
    _check(pred, true)
    return float(np.sqrt(np.mean((pred - true) ** 2)))


def conservation_gap(pred: np.ndarray, u0: np.ndarray) -> float:
    """Percent: ``100 * mean_b max_t |mean_x p_bt - mean_x u_b0| / rms_x(u_b0)``.

    Zero for a rollout that conserves mass; invariant under periodic shifts, a common nonzero
    scaling of ``pred`` and ``u0`` and reordering of trajectories.
    """
    if pred.ndim != 3 or u0.shape != (pred.shape[0], pred.shape[2]):
        raise ValueError(f"pred must be (B, T, X) and u0 (B, X); got {pred.shape}, {u0.shape}")
    drift = np.abs(np.mean(pred, axis=-1) - np.mean(u0, axis=-1, keepdims=True))  # (B, T)
    rms0 = np.sqrt(np.mean(u0**2, axis=-1))  # (B,)
    return float(100.0 * np.mean(np.max(drift, axis=1) / rms0))
