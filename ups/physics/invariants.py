"""Quantities Burgers' equation conserves or never increases, on the last (grid) axis.

For periodic viscous Burgers: mass is conserved exactly; energy and total variation never
increase; max|u| never exceeds max|u_0| (maximum principle).
"""

from __future__ import annotations

import numpy as np


def mass(u: np.ndarray) -> np.ndarray:
    """Spatial mean of ``u`` (..., X) -> (...)."""
    return np.mean(u, axis=-1)


def energy(u: np.ndarray) -> np.ndarray:
    """``E = mean(u^2) / 2`` of ``u`` (..., X) -> (...)."""
    return 0.5 * np.mean(np.square(u), axis=-1)


def total_variation(u: np.ndarray) -> np.ndarray:
    """Periodic total variation ``sum_x |u_{x+1} - u_x|`` of ``u`` (..., X) -> (...)."""
    return np.sum(np.abs(np.roll(u, -1, axis=-1) - u), axis=-1)


def max_abs(u: np.ndarray) -> np.ndarray:
    """``max_x |u|`` of ``u`` (..., X) -> (...)."""
    return np.max(np.abs(u), axis=-1)
