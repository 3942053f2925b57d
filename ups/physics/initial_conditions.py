"""PDEBench's 1D Burgers initial-condition distribution, with its two flaws fixed.

Each IC is ``sum_{i=1,2} A_i sin(2 pi n_i x + phi_i)``, ``n_i`` in 1..4, ``A_i ~ U(0, 1)``,
``phi_i ~ U(0, 2 pi)``. About 10% then take ``|u|`` times a random sign; about 10% are
multiplied by a tanh window. Unlike PDEBench's generator the wavenumbers are exactly periodic
(``2 pi n``, not ``2 pi n / (1 - dx)``) and every draw comes from its own random numbers.
"""

from __future__ import annotations

import numpy as np

MODES, MAX_WAVENUMBER = 2, 4
ABS_FRACTION, WINDOW_FRACTION = 0.1, 0.1
WINDOW_SHARPNESS = 0.01  # tanh edge width, in units of the domain length


def sample_initial_conditions(rng: np.random.Generator, n: int, x: np.ndarray) -> np.ndarray:
    """Draw ``n`` initial conditions on grid ``x`` (X,) in [0, 1): array (n, X), float64."""
    if n < 1:
        raise ValueError(f"need n >= 1 initial conditions, got {n}")
    x = np.asarray(x, dtype=np.float64)
    waves = rng.integers(1, MAX_WAVENUMBER + 1, size=(n, MODES, 1))
    amplitude = rng.uniform(0.0, 1.0, size=(n, MODES, 1))
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, MODES, 1))
    u = np.sum(amplitude * np.sin(2 * np.pi * waves * x + phase), axis=1)

    use_abs = rng.uniform(size=(n, 1)) < ABS_FRACTION
    sign = rng.choice([-1.0, 1.0], size=(n, 1))
    u = np.where(use_abs, sign * np.abs(u), u)

    use_window = rng.uniform(size=(n, 1)) < WINDOW_FRACTION
    left = rng.uniform(0.1, 0.45, size=(n, 1))
    right = rng.uniform(0.55, 0.9, size=(n, 1))
    window = 0.5 * (
        np.tanh((x - left) / WINDOW_SHARPNESS) - np.tanh((x - right) / WINDOW_SHARPNESS)
    )
    return np.where(use_window, u * window, u)
