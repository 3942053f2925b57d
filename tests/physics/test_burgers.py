import numpy as np
import pytest

from ups.physics.burgers import downsample, solve_burgers, step_cell_averages
from ups.physics.cole_hopf import cole_hopf_sine
from ups.physics.initial_conditions import sample_initial_conditions
from ups.physics.invariants import energy, mass, max_abs, total_variation

EPS = 0.01 / np.pi  # PDEBench's nu = 0.01
T_OUT = np.linspace(0.0, 2.0, 41)
COLE_HOPF_TIMES = (1, 4, 8, 20, 40)  # frames: t = 0.05 (steepening), 0.2 (shock) .. 2.0


def _sine_solution(points: int, amplitude: float = 1.0, cfl: float = 0.5) -> np.ndarray:
    x = np.arange(points) / points
    return solve_burgers(amplitude * np.sin(2 * np.pi * x)[None], EPS, T_OUT, 1e-3, cfl)[0]


def _cole_hopf_error(points: int, amplitude: float = 1.0, cfl: float = 0.5) -> float:
    x = np.arange(points) / points
    u = _sine_solution(points, amplitude, cfl)
    exact = [cole_hopf_sine(amplitude, EPS, x, T_OUT[i]) for i in COLE_HOPF_TIMES]
    return max(np.max(np.abs(u[i] - e)) for i, e in zip(COLE_HOPF_TIMES, exact, strict=True))


def test_matches_cole_hopf_exact_solution_through_the_shock():
    # Measured 1.7e-7 at 1024 points (CFL 0.5); the shock is ~3 grid cells wide at nu = 0.01.
    assert _cole_hopf_error(1024) < 1e-6


def test_golden_data_settings_match_cole_hopf():
    # The dataset solves at CFL 1.0 (IF-RK4 is stable to about 1.35): measured 1.5e-6.
    assert _cole_hopf_error(1024, cfl=1.0) < 5e-6


@pytest.mark.parametrize("amplitude", [0.3, -0.7])
def test_matches_cole_hopf_for_other_amplitudes(amplitude):
    assert _cole_hopf_error(512, amplitude) < 1e-4


def test_converges_when_the_grid_is_refined():
    errors = [_cole_hopf_error(points) for points in (256, 512, 1024)]
    assert errors[0] > 10 * errors[1] > 100 * errors[2]


def test_converges_when_the_time_step_is_refined():
    x = np.arange(256) / 256
    u0 = np.sin(2 * np.pi * x)[None] + 0.5 * np.cos(6 * np.pi * x)[None]
    t = np.array([0.0, 0.3])
    reference = solve_burgers(u0, EPS, t, dt_max=1e-5, cfl=1.0)
    coarse, fine = (
        np.abs(solve_burgers(u0, EPS, t, dt_max=h, cfl=1.0) - reference).max() for h in (1e-3, 5e-4)
    )
    assert coarse / fine > 8  # fourth order in time: ~16 per halving


def test_cole_hopf_reference_agrees_with_a_taylor_expansion_at_small_times():
    x = np.arange(512) / 512

    def taylor_gap(t):
        # Inviscid characteristics plus first-order viscous decay leave an O(t^2) remainder.
        first_order = np.sin(2 * np.pi * (x - t * np.sin(2 * np.pi * x)))
        first_order -= EPS * t * (2 * np.pi) ** 2 * np.sin(2 * np.pi * x)
        return np.abs(cole_hopf_sine(1.0, EPS, x, t) - first_order).max()

    assert taylor_gap(1e-3) < 2e-5
    assert 3.5 < taylor_gap(1e-3) / taylor_gap(5e-4) < 4.5


def _random_trajectories(points: int = 256, n: int = 64, seed: int = 0) -> np.ndarray:
    x = np.arange(points) / points
    u0 = sample_initial_conditions(np.random.default_rng(seed), n, x)
    return solve_burgers(u0, EPS, T_OUT, 1e-3)


def test_conserves_mass_to_round_off():
    u = _random_trajectories()
    assert np.abs(mass(u) - mass(u[:, :1])).max() < 1e-12


def test_energy_total_variation_and_maximum_never_grow():
    u = _random_trajectories(points=512)
    assert np.all(np.diff(energy(u), axis=1) <= 0)
    assert np.all(np.diff(total_variation(u), axis=1) <= 1e-9)
    assert np.all(max_abs(u) <= max_abs(u[:, :1]) + 1e-9)


def test_batch_rows_do_not_interact():
    u = _random_trajectories(n=4)
    alone = solve_burgers(u[2:3, 0], EPS, T_OUT, 1e-3)
    # The adaptive step follows the batch maximum, so a lone row may take other steps.
    np.testing.assert_allclose(alone[0], u[2], atol=1e-6)


def test_zero_and_constant_states_are_steady():
    flat = np.full((2, 64), 0.25)
    flat[1] = 0.0
    np.testing.assert_allclose(solve_burgers(flat, EPS, T_OUT, 1e-3)[:, -1], flat, atol=1e-14)


@pytest.mark.parametrize(
    ("u0", "t", "message"),
    [
        (np.zeros(64), T_OUT, "shape"),
        (np.full((1, 64), np.nan), T_OUT, "NaN"),
        (np.zeros((1, 64)), np.array([0.1, 0.2]), "start at 0"),
        (np.zeros((1, 64)), np.array([0.0, 0.2, 0.1]), "increase"),
    ],
)
def test_bad_inputs_are_refused(u0, t, message):
    with pytest.raises(ValueError, match=message):
        solve_burgers(u0, EPS, t, 1e-3)


def test_bad_coefficients_are_refused():
    with pytest.raises(ValueError, match="eps"):
        solve_burgers(np.zeros((1, 64)), 0.0, T_OUT, 1e-3)
    with pytest.raises(ValueError, match="cfl"):
        solve_burgers(np.zeros((1, 64)), EPS, T_OUT, 1e-3, cfl=2.0)


def test_downsample_keeps_the_mean_exactly_and_refuses_bad_factors():
    u = _random_trajectories(points=256, n=8)
    for factor in (1, 2, 4, 8):
        coarse = downsample(u, factor)
        assert coarse.shape == (*u.shape[:-1], 256 // factor)
        np.testing.assert_allclose(mass(coarse), mass(u), atol=1e-15)
    odd = np.random.default_rng(0).normal(size=(2, 9))
    np.testing.assert_allclose(mass(downsample(odd, 3)), mass(odd), atol=1e-15)
    with pytest.raises(ValueError, match="divide"):
        downsample(u, 3)


def test_downsample_is_centred_on_the_coarse_points():
    x = np.arange(512) / 512
    smooth = np.sin(2 * np.pi * x)
    # A centred cell average of a smooth field differs from point values by O(dx^2) only.
    np.testing.assert_allclose(downsample(smooth, 8), smooth[::8], atol=2e-3)


@pytest.mark.parametrize(("factor", "fine_points"), [(1, 256), (2, 1024), (3, 768), (8, 1024)])
def test_a_step_from_cell_averages_is_the_fine_solvers_step(factor, fine_points):
    # Fields with shocks solved on the fine grid and stored as cell averages, as ups/data does.
    fine = _random_trajectories(points=fine_points, n=4)  # (B, T, X) on T_OUT
    stored = downsample(fine, factor)
    for i in (1, 10, 30):  # steepening, shock, decay
        step = step_cell_averages(stored[:, i], EPS, T_OUT[1], factor, dt_max=1e-3)
        error = np.abs(step - stored[:, i + 1]).max() / np.abs(stored[:, i + 1]).max()
        assert error < 1e-6, (factor, i, error)
    if factor > 1:  # the same solver on the stored points themselves is far off
        coarse = solve_burgers(stored[:, 10], EPS, T_OUT[:2], 1e-3)[:, 1]
        assert np.abs(coarse - stored[:, 11]).max() > 1e-3 * np.abs(stored[:, 11]).max()
