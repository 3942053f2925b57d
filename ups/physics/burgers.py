"""Batched pseudo-spectral reference solver for periodic viscous Burgers (float64).

``u_t + (u^2/2)_x = eps u_xx`` on x in [0, 1). Fourier in x with 2/3 dealiasing (the state
is kept on the dealiased modes, so the Galerkin nonlinearity conserves energy and diffusion
alone removes it), exact integrating factor for diffusion, classic RK4 for advection (Lawson's
IF-RK4). The step adapts to an advective CFL number and lands exactly on every output time.
"""

from __future__ import annotations

import math

import numpy as np
from tqdm.auto import tqdm

from ups.physics import spectral


def solve_burgers(
    u0: np.ndarray,
    eps: float,
    t_out: np.ndarray,
    dt_max: float,
    cfl: float = 0.5,
    progress: bool = False,
) -> np.ndarray:
    """Solve from ``u0`` (B, X) and return ``u`` at ``t_out`` (B, T, X).

    ``t_out`` (T,) starts at 0 and increases. Each interval between outputs is split into equal
    steps ``h <= min(dt_max, cfl * dx / max|u|)``, ``max`` over the batch at the interval start
    (the maximum principle keeps ``max|u|`` from growing inside it). The returned frames are
    dealiased: frame 0 is ``u0`` projected onto the modes the solver keeps.
    """
    u0, t_out = _check_inputs(u0, eps, t_out, dt_max, cfl)
    points = u0.shape[-1]
    k = spectral.wavenumbers(points)
    keep = spectral.dealias_mask(points)
    u_hat = spectral.rfft(u0) * keep
    frames = np.empty((u0.shape[0], len(t_out), points))
    frames[:, 0] = spectral.irfft(u_hat, points)
    intervals = tqdm(range(1, len(t_out)), desc="Burgers", disable=not progress, leave=False)
    for i in intervals:
        span = t_out[i] - t_out[i - 1]
        speed = float(np.max(np.abs(frames[:, i - 1]))) or 1.0
        steps = math.ceil(span / min(dt_max, cfl / (points * speed)))
        h = span / steps
        half, full = np.exp(-eps * k**2 * h / 2), np.exp(-eps * k**2 * h)
        for _ in range(steps):
            u_hat = _if_rk4_step(u_hat, h, half, full, k, keep, points)
        frames[:, i] = spectral.irfft(u_hat, points)
    return frames


def _if_rk4_step(u_hat, h, half, full, k, keep, points):
    """One Lawson IF-RK4 step of ``v' = N(v)`` in the diffusion-free frame."""
    a = _advection(u_hat, k, keep, points)
    b = _advection(half * (u_hat + h / 2 * a), k, keep, points)
    c = _advection(half * u_hat + h / 2 * b, k, keep, points)
    d = _advection(full * u_hat + h * half * c, k, keep, points)
    return full * u_hat + h / 6 * (full * a + 2 * half * (b + c) + d)


def _advection(u_hat, k, keep, points):
    """Fourier coefficients of ``-(u^2/2)_x``, dealiased."""
    u = spectral.irfft(u_hat, points)
    return -0.5j * k * keep * spectral.rfft(u * u)


def downsample(u_fine: np.ndarray, factor: int) -> np.ndarray:
    """Cell averages of ``u_fine`` (..., X) on every ``factor``-th point -> (..., X // factor).

    Each coarse value is the trapezoid-weighted mean of the fine points within half a coarse
    cell of it (periodic). The weights of all cells sum to one per fine point, so the coarse
    mean equals the fine mean exactly: plain striding would alias shock harmonics into the
    mean and make the stored truth look non-conservative.
    """
    if factor < 1 or u_fine.shape[-1] % factor:
        raise ValueError(
            f"factor {factor} must be >= 1 and divide the grid size {u_fine.shape[-1]}"
        )
    if factor == 1:
        return u_fine.copy()
    weights, window = _average_weights(factor)
    averaged = sum(
        w * np.roll(u_fine, -shift, axis=-1) for w, shift in zip(weights, window, strict=True)
    )
    return averaged[..., ::factor]


def step_cell_averages(
    prev: np.ndarray, eps: float, dt: float, factor: int, dt_max: float, cfl: float = 0.5
) -> np.ndarray:
    """One step of length ``dt`` from frames ``prev`` (B, X) that are :func:`downsample`'s cell
    averages of a field ``factor`` times finer, as the stored data are -> (B, X).

    The fine field is recovered in Fourier space (each coarse mode divided by the averaging's
    gain at that mode, then interpolated onto ``X * factor`` points), solved for ``dt`` with
    :func:`solve_burgers` and averaged back. Exact up to the fine field's modes above the
    coarse Nyquist, which viscosity leaves negligible in the stored data: from a stored frame
    it gives the next one to ~1e-8 (tests/physics/test_burgers.py), where a solve on the
    stored points themselves is off by ~1e-3.
    """
    return continue_cell_averages(prev, eps, np.array([dt]), factor, dt_max, cfl)[:, 0]


def continue_cell_averages(
    prev: np.ndarray,
    eps: float,
    times: np.ndarray,
    factor: int,
    dt_max: float,
    cfl: float = 0.5,
) -> np.ndarray:
    """:func:`step_cell_averages` at several ``times`` (T,) > 0, increasing, in one solve:
    frames ``prev`` (B, X) -> their continuations (B, T, X)."""
    points = prev.shape[-1]
    fine = spectral.interpolate(
        spectral.irfft(spectral.rfft(prev) / _average_gain(points, factor), points),
        points * factor,
    )
    after = solve_burgers(fine, eps, np.concatenate([[0.0], times]), dt_max, cfl=cfl)[:, 1:]
    return downsample(after, factor)


def _average_weights(factor: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`downsample`'s weights and the fine-point offsets they apply to (both (n,))."""
    if factor % 2:  # odd factors: a symmetric window of `factor` equal weights
        return np.full(factor, 1.0 / factor), np.arange(factor) - factor // 2
    weights = np.full(factor + 1, 1.0 / factor)
    weights[[0, -1]] = 0.5 / factor
    return weights, np.arange(factor + 1) - factor // 2


def _average_gain(points: int, factor: int) -> np.ndarray:
    """How much :func:`downsample` keeps of each mode 0..points/2 of a fine field (real, since
    its window is symmetric): coarse mode k = gain[k] * fine mode k."""
    weights, window = _average_weights(factor)
    k = np.arange(points // 2 + 1)
    return np.cos(2 * np.pi * np.outer(k, window) / (points * factor)) @ weights


def _check_inputs(u0, eps, t_out, dt_max, cfl):
    u0 = np.asarray(u0, dtype=np.float64)
    t_out = np.asarray(t_out, dtype=np.float64)
    if u0.ndim != 2 or u0.shape[-1] < 4:
        raise ValueError(f"u0 must have shape (batch, points >= 4), got {u0.shape}")
    if not np.all(np.isfinite(u0)):
        raise ValueError("u0 contains NaN or inf")
    if t_out.ndim != 1 or len(t_out) < 1 or t_out[0] != 0 or np.any(np.diff(t_out) <= 0):
        raise ValueError("t_out must be 1-D, start at 0 and strictly increase")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if not dt_max > 0 or not 0 < cfl <= 1:
        raise ValueError(f"need dt_max > 0 and 0 < cfl <= 1, got dt_max={dt_max}, cfl={cfl}")
    return u0, t_out
