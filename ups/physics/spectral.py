"""Fourier calculus on the periodic unit interval x in [0, 1) (last axis = grid)."""

from __future__ import annotations

import numpy as np
import scipy.fft

FFT_WORKERS = -1  # scipy.fft threads: all cores; results do not depend on the count


def wavenumbers(points: int) -> np.ndarray:
    """Angular wavenumbers ``2*pi*n`` of an rfft over ``points`` samples, shape (points//2 + 1,)."""
    return 2.0 * np.pi * np.arange(points // 2 + 1)


def dealias_mask(points: int) -> np.ndarray:
    """Orszag's 2/3 rule: True for rfft modes kept, |n| < points/3, shape (points//2 + 1,)."""
    return np.arange(points // 2 + 1) < points / 3.0


def rfft(u: np.ndarray) -> np.ndarray:
    return scipy.fft.rfft(u, axis=-1, workers=FFT_WORKERS)


def irfft(u_hat: np.ndarray, points: int) -> np.ndarray:
    return scipy.fft.irfft(u_hat, n=points, axis=-1, workers=FFT_WORKERS)


def derivative(u: np.ndarray, order: int = 1) -> np.ndarray:
    """Spectral ``d^order u / dx^order`` of periodic samples ``u`` (..., X) on [0, 1).

    The Nyquist mode of an odd derivative is dropped: its derivative is not real-valued.
    """
    if order < 0:
        raise ValueError(f"derivative order must be >= 0, got {order}")
    points = u.shape[-1]
    factor = (1j * wavenumbers(points)) ** order
    if order % 2 == 1 and points % 2 == 0:
        factor[-1] = 0.0
    return irfft(rfft(u) * factor, points)


def interpolate(u: np.ndarray, points: int) -> np.ndarray:
    """Fourier interpolation of periodic samples ``u`` (..., X) onto ``points >= X`` samples.

    Exact for band-limited data; the coarse Nyquist mode is split evenly between +/- so the
    result stays real and symmetric.
    """
    coarse = u.shape[-1]
    if points < coarse:
        raise ValueError(f"can only refine: {points} < {coarse} points")
    u_hat = rfft(u)
    if coarse % 2 == 0:
        u_hat[..., -1] *= 0.5
    padded = np.zeros((*u.shape[:-1], points // 2 + 1), dtype=complex)
    padded[..., : u_hat.shape[-1]] = u_hat
    return irfft(padded, points) * (points / coarse)
