import numpy as np
import pytest

from ups.physics.initial_conditions import sample_initial_conditions

X = np.arange(256) / 256


def test_distribution_matches_pdebench_recipe():
    u = sample_initial_conditions(np.random.default_rng(0), 4000, X)
    assert u.shape == (4000, 256) and u.dtype == np.float64
    assert np.abs(u).max() <= 2.0
    one_signed = np.mean(np.all(u >= -1e-12, axis=1) | np.all(u <= 1e-12, axis=1))
    assert 0.07 < one_signed < 0.13  # the ~10% abs() branch
    spectrum = np.abs(np.fft.rfft(u, axis=1))
    plain = np.all(u != 0, axis=1) & (one_signed == one_signed)
    # Non-windowed, non-abs samples live on modes 1..4 only.
    sines = spectrum[:, 5:].max(axis=1) < 1e-9
    assert 0.75 < np.mean(sines) < 0.85 and plain.any()


def test_wavenumbers_are_exactly_periodic():
    # Pure sine samples must continue smoothly across x = 1: no seam as in PDEBench's 2 pi n/(1-dx).
    u = sample_initial_conditions(np.random.default_rng(1), 500, X)
    spectrum = np.abs(np.fft.rfft(u, axis=1))
    sines = u[spectrum[:, 5:].max(axis=1) < 1e-9]
    assert len(sines) > 300
    seam = np.abs(sines[:, 0] - sines[:, -1])
    step = np.abs(np.diff(sines, axis=1)).max(axis=1)
    assert np.all(seam <= step + 1e-12)


def test_same_generator_state_same_samples_and_different_seeds_differ():
    a = sample_initial_conditions(np.random.default_rng(3), 10, X)
    b = sample_initial_conditions(np.random.default_rng(3), 10, X)
    c = sample_initial_conditions(np.random.default_rng(4), 10, X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_draws_are_independent():
    u = sample_initial_conditions(np.random.default_rng(5), 2000, X)
    first_mode = np.fft.rfft(u, axis=1)[:, 1:5]
    # PDEBench reused one key for amplitude and phase; independent draws leave no correlation.
    amplitude, phase = np.abs(first_mode).max(axis=1), np.angle(first_mode[:, 0])
    assert abs(np.corrcoef(amplitude, phase)[0, 1]) < 0.1


def test_needs_at_least_one_sample():
    with pytest.raises(ValueError, match="n >= 1"):
        sample_initial_conditions(np.random.default_rng(0), 0, X)
