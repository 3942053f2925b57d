"""The discrete viscous Burgers residual, the one home for rewards, metrics and tests.

``u_t + (u^2/2)_x = eps u_xx`` on x in [0, 1) periodic. A step ``prev -> c`` of length ``dt``
is scored at its midpoint ``m = (c + prev) / 2`` (a Crank–Nicolson-like balance): the residual
is second-order in ``dt`` for an exact solution, so it is small but not zero for finite steps.
"""

from __future__ import annotations

import numpy as np

from ups.physics import spectral


def burgers_operator(m: np.ndarray, eps: float) -> np.ndarray:
    """``d_x(m^2/2) - eps d_xx m`` of ``m`` (..., X) on [0, 1) (units of u / time) -> (..., X).

    Spectral derivatives of the pointwise square, without dealiasing: the candidates scored
    here are the grid fields themselves, not a Galerkin state.
    """
    return spectral.derivative(0.5 * m * m, 1) - eps * spectral.derivative(m, 2)


def burgers_residual(c: np.ndarray, prev: np.ndarray, dt: float, eps: float) -> np.ndarray:
    """Residual ``(c - prev)/dt + d_x(m^2/2) - eps d_xx m``, ``m = (c + prev)/2`` -> (..., X).

    ``c`` and ``prev`` (..., X) are the states at ``t + dt`` and ``t`` on the grid
    ``x_j = j / X``; ``dt`` > 0 in time units and ``eps = nu / pi`` >= 0. Units: u / time.
    """
    if c.shape != prev.shape:
        raise ValueError(f"c and prev must have the same shape; got {c.shape}, {prev.shape}")
    if not dt > 0 or not eps >= 0:
        raise ValueError(f"need dt > 0 and eps >= 0, got dt={dt}, eps={eps}")
    return (c - prev) / dt + burgers_operator(0.5 * (c + prev), eps)
