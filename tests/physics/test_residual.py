import numpy as np
import pytest

from ups.physics.cole_hopf import cole_hopf_sine
from ups.physics.residual import burgers_residual

X = np.arange(128) / 128
EPS = 0.01 / np.pi
T = 0.05  # before the sine steepens (t* = 1 / (2 pi A) = 0.16 for A = 1): resolved at 128


def _relative_residual(dt: float, eps: float = EPS, eps_used: float | None = None) -> float:
    before, after = cole_hopf_sine(1.0, eps, X, T), cole_hopf_sine(1.0, eps, X, T + dt)
    residual = burgers_residual(after, before, dt, eps if eps_used is None else eps_used)
    return float(np.linalg.norm(residual) / np.linalg.norm((after - before) / dt))


def test_exact_solution_has_a_small_second_order_residual():
    # Measured 1.1e-3 at dt = 0.01 and 2.8e-4 at 0.005: the midpoint rule's O(dt^2).
    assert _relative_residual(0.01) < 2e-3
    assert _relative_residual(0.01) / _relative_residual(0.005) == pytest.approx(4, rel=0.1)


@pytest.mark.parametrize("eps", [EPS, 0.05])
def test_wrong_viscosity_gives_a_clearly_larger_residual(eps):
    # Measured: 0.05 (eps = 0.01/pi) and 0.79 (eps = 0.05) with 2 eps, against <= 1e-3.
    right = _relative_residual(0.01, eps)
    assert _relative_residual(0.01, eps, eps_used=2 * eps) > 20 * right
    assert _relative_residual(0.01, eps, eps_used=0.0) > 20 * right


def test_residual_of_a_steady_constant_is_zero():
    u = np.full((2, 16), 0.7)
    np.testing.assert_allclose(burgers_residual(u, u, 0.1, EPS), 0.0, atol=1e-14)


def test_residual_of_a_frozen_sine_is_its_flux_and_diffusion():
    # With c = prev = sin(2 pi x) the time term is 0 and the residual is
    # d_x(u^2/2) - eps d_xx u = pi sin(4 pi x) + eps (2 pi)^2 sin(2 pi x).
    u = np.sin(2 * np.pi * X)
    expected = np.pi * np.sin(4 * np.pi * X) + EPS * (2 * np.pi) ** 2 * u
    np.testing.assert_allclose(burgers_residual(u, u, 0.1, EPS), expected, atol=1e-10)


def test_residual_refuses_bad_inputs():
    u = np.zeros((2, 8))
    with pytest.raises(ValueError, match="same shape"):
        burgers_residual(u, u[:, :4], 0.1, EPS)
    with pytest.raises(ValueError, match="dt > 0"):
        burgers_residual(u, u, 0.0, EPS)
