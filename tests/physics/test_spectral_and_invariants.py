import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ups.physics import spectral
from ups.physics.invariants import energy, mass, max_abs, total_variation

X = np.arange(64) / 64


@pytest.mark.parametrize("order", [1, 2, 3])
def test_spectral_derivative_is_exact_on_resolved_modes(order):
    u = np.sin(2 * np.pi * 3 * X) + np.cos(2 * np.pi * 5 * X)
    w3, w5 = 2 * np.pi * 3, 2 * np.pi * 5
    expected = {
        1: w3 * np.cos(w3 * X) - w5 * np.sin(w5 * X),
        2: -(w3**2) * np.sin(w3 * X) - w5**2 * np.cos(w5 * X),
        3: -(w3**3) * np.cos(w3 * X) + w5**3 * np.sin(w5 * X),
    }[order]
    np.testing.assert_allclose(spectral.derivative(u, order), expected, atol=1e-9 * w5**order)


def test_derivative_refuses_negative_order():
    with pytest.raises(ValueError, match="order"):
        spectral.derivative(X, -1)


def test_dealias_mask_keeps_two_thirds():
    keep = spectral.dealias_mask(96)
    assert keep.sum() == 32 and keep[31] and not keep[32]


def test_invariants_on_known_fields():
    u = np.stack([np.sin(2 * np.pi * X), 1 + 0 * X])
    np.testing.assert_allclose(mass(u), [0.0, 1.0], atol=1e-15)
    np.testing.assert_allclose(energy(u), [0.25, 0.5])
    np.testing.assert_allclose(
        total_variation(u), [4 * np.sin(2 * np.pi * 16 / 64), 0.0], atol=1e-12
    )
    np.testing.assert_allclose(max_abs(u), [1.0, 1.0])


fields = arrays(np.float64, (3, 32), elements=st.floats(-10, 10, allow_nan=False))


@given(fields, st.integers(0, 31))
def test_invariants_ignore_periodic_shifts(u, shift):
    shifted = np.roll(u, shift, axis=-1)
    for quantity in (mass, energy, total_variation, max_abs):
        np.testing.assert_allclose(quantity(shifted), quantity(u), rtol=1e-12, atol=1e-12)


@given(fields)
def test_invariants_respect_the_burgers_symmetry(u):
    # u(x) -> -u(-x) maps solutions to solutions; mass flips sign, the rest are unchanged.
    mirrored = -np.roll(u[..., ::-1], 1, axis=-1)
    np.testing.assert_allclose(mass(mirrored), -mass(u), atol=1e-12)
    for quantity in (energy, total_variation, max_abs):
        np.testing.assert_allclose(quantity(mirrored), quantity(u), rtol=1e-12, atol=1e-12)
