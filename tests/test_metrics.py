import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ups.metrics import (
    SUITE_KEYS,
    bootstrap_ci,
    conservation_gap,
    energy_violations,
    max_principle_violation,
    nrmse,
    nrmse_at_horizons,
    nrmse_per_step,
    pdebench_nrmse,
    rmse,
    rollout_metrics,
    ttc_improvement,
    tv_violations,
)

X = np.arange(16) / 16
SINE = np.sin(2 * np.pi * X)  # rms 1/sqrt(2), mean 0, max 1


def _rollout(batch: int = 3, steps: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Decaying sines (B, T, X) and their initial frame (B, X): a law-abiding rollout."""
    amplitude = np.arange(1, batch + 1)[:, None, None]
    decay = 0.9 ** np.arange(1, steps + 1)[None, :, None]
    return amplitude * decay * SINE, np.arange(1, batch + 1)[:, None] * SINE


@pytest.mark.parametrize("a", [0.1, -0.3, 2.0])
def test_nrmse_of_a_relative_error_is_its_size(a):
    true, _ = _rollout()
    pred = true * (1 + a)
    assert nrmse(pred, true) == pytest.approx(abs(a), rel=1e-12)
    np.testing.assert_allclose(nrmse_per_step(pred, true), abs(a), rtol=1e-12)


def test_rmse_of_a_constant_offset_is_the_offset():
    true, _ = _rollout()
    assert rmse(true + 0.25, true) == pytest.approx(0.25, rel=1e-12)


def test_horizons_pick_frames_ceil_of_fraction_times_t():
    true = np.ones((2, 10, 8))
    errors = np.arange(1, 11) / 100  # frame t (1-based) has relative error t/100
    pred = true * (1 + errors[None, :, None])
    got = nrmse_at_horizons(pred, true)
    # T = 10: frames 1, ceil(2.5) = 3, 5, 10.
    expected = {"nrmse_step1": 0.01, "nrmse_h25": 0.03, "nrmse_h50": 0.05, "nrmse_h100": 0.10}
    assert got == pytest.approx(expected, rel=1e-12)


def test_horizons_of_a_single_frame_are_that_frame():
    true = np.ones((2, 1, 8))
    got = nrmse_at_horizons(true * 1.2, true)
    assert list(got.values()) == pytest.approx([0.2] * 4, rel=1e-12)


def test_conservation_gap_of_a_known_offset():
    pred, u0 = _rollout()
    # An offset of 0.1 at one frame against rms(u0_b) = b / sqrt(2): gap 0.1 sqrt(2) / b.
    pred[:, 2] += 0.1
    expected = 100 * np.mean(0.1 * np.sqrt(2) / np.arange(1, 4))
    assert conservation_gap(pred, u0) == pytest.approx(expected, rel=1e-12)


def test_energy_violations_count_exactly_the_increases():
    u0 = SINE[None]
    # Amplitudes 1 -> 1.1 (up) -> 0.5 (down) -> 0.8 (up) -> 0.2 (down): 2 of 4 increase.
    pred = np.array([1.1, 0.5, 0.8, 0.2])[None, :, None] * SINE
    assert energy_violations(pred, u0) == 0.5
    assert tv_violations(pred, u0) == 0.5


def test_violations_ignore_growth_below_the_tolerance():
    pred = np.array([1 + 1e-8, 1.0])[None, :, None] * SINE
    assert energy_violations(pred, SINE[None]) == 0.0
    assert tv_violations(pred, SINE[None]) == 0.0


def test_a_decaying_rollout_violates_nothing():
    pred, u0 = _rollout()
    assert energy_violations(pred, u0) == tv_violations(pred, u0) == 0.0
    assert max_principle_violation(pred, u0) == 0.0


def test_tv_violation_without_energy_violation():
    # Same energy, more wiggles: sin(2 pi x) -> sin(4 pi x) doubles the total variation.
    pred = np.sin(4 * np.pi * X)[None, None]
    assert energy_violations(pred, SINE[None]) == 0.0
    assert tv_violations(pred, SINE[None]) == 1.0


def test_max_principle_violation_of_a_known_overshoot():
    pred, u0 = _rollout(batch=2)
    pred[0, 1] = 1.3 * SINE  # bound 1: overshoot 0.3 -> 0.3
    pred[1, 3] = 2.5 * SINE  # bound 2: overshoot 0.5 -> 0.25
    assert max_principle_violation(pred, u0) == pytest.approx((0.3 + 0.25) / 2, rel=1e-12)


def test_ttc_improvement_is_a_percentage():
    assert ttc_improvement(0.1, 0.08) == pytest.approx(20.0)
    assert ttc_improvement(0.1, 0.12) == pytest.approx(-20.0)
    with pytest.raises(ValueError, match="nrmse_base"):
        ttc_improvement(0.0, 0.1)


def test_bootstrap_ci_brackets_the_mean_and_is_seeded():
    values = np.random.default_rng(0).normal(1.0, 0.5, size=200)
    low, high = bootstrap_ci(values, seed=3)
    assert low < values.mean() < high
    # The half-width matches the normal approximation 1.96 s / sqrt(B) to ~15%.
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    assert (high - low) / 2 == pytest.approx(half, rel=0.15)
    assert bootstrap_ci(values, seed=3) == (low, high)
    assert bootstrap_ci(values, seed=4) != (low, high)


@pytest.mark.parametrize("values", [[0.3], [0.2, 0.2, 0.2]])
def test_bootstrap_ci_of_nothing_to_resample_is_the_mean(values):
    assert bootstrap_ci(np.array(values), seed=0) == pytest.approx((values[0], values[0]))


def test_rollout_metrics_is_the_flat_suite():
    true, u0 = _rollout(batch=4, steps=8)
    pred = true * np.array([1.1, 1.2, 1.3, 1.4])[:, None, None]
    got = rollout_metrics(pred, true, u0, seed=0)
    assert list(got) == [
        "nrmse",
        "nrmse_ci_low",
        "nrmse_ci_high",
        "nrmse_step1",
        "nrmse_h25",
        "nrmse_h50",
        "nrmse_h100",
        "rmse",
        "conservation_gap",
        "energy_violations",
        "tv_violations",
        "max_principle_violation",
    ]
    assert tuple(got) == SUITE_KEYS
    assert got["nrmse"] == pytest.approx(0.25)
    assert got["nrmse_ci_low"] <= 0.25 <= got["nrmse_ci_high"]
    assert got["conservation_gap"] == pytest.approx(0.0, abs=1e-12)
    assert all(isinstance(v, float) for v in got.values())


@pytest.mark.parametrize(
    ("pred_shape", "other_shape"),
    [((2, 3, 8), (2, 8, 3)), ((2, 3, 8), (3, 8)), ((2, 0, 8), (2, 8))],
)
def test_shape_errors_are_clear(pred_shape, other_shape):
    pred = np.ones(pred_shape)
    with pytest.raises(ValueError, match=r"\(B, T, X\)|predicted frame"):
        if len(other_shape) == 3:
            nrmse(pred, np.ones(other_shape))
        else:
            conservation_gap(pred, np.ones(other_shape))


def test_rollout_metrics_rejects_a_mismatched_u0():
    true, u0 = _rollout()
    with pytest.raises(ValueError, match="u0"):
        rollout_metrics(true, true, u0[:, :-1])


# --- conservation-gap invariants (docs/design.md, "Metrics") ---------------------------------

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
rollouts = arrays(np.float64, (3, 4, 8), elements=finite)
initials = arrays(np.float64, (3, 8), elements=finite)


# Multiples of 1/8: sums and means of 8 of them are exact, so "exactly 0" can be asserted.
dyadic = st.integers(-80, 80).map(lambda k: k / 8)


def _non_degenerate(u0: np.ndarray) -> None:
    # Round-off in the means is divided by rms(u0); keep it far from 0.
    assume(np.all(np.sqrt(np.mean(u0**2, axis=-1)) > 1e-2))


@given(rollouts, initials)
def test_gap_is_non_negative(pred, u0):
    _non_degenerate(u0)
    assert conservation_gap(pred, u0) >= 0


@given(arrays(np.float64, (3, 4, 8), elements=dyadic), arrays(np.float64, (3, 8), elements=dyadic))
def test_gap_is_zero_when_every_frame_keeps_the_mean(pred, u0):
    _non_degenerate(u0)
    conserving = pred - pred.mean(axis=-1, keepdims=True) + u0.mean(axis=-1)[:, None, None]
    assert conservation_gap(conserving, u0) <= 1e-12


@given(rollouts, initials, st.integers(0, 7))
def test_gap_ignores_periodic_shifts(pred, u0, shift):
    _non_degenerate(u0)
    shifted = conservation_gap(np.roll(pred, shift, axis=-1), np.roll(u0, shift, axis=-1))
    assert shifted == pytest.approx(conservation_gap(pred, u0), rel=1e-9, abs=1e-9)


@given(rollouts, initials, st.floats(0.01, 100) | st.floats(-100, -0.01))
def test_gap_ignores_a_common_scaling(pred, u0, scale):
    _non_degenerate(u0)
    scaled = conservation_gap(scale * pred, scale * u0)
    assert scaled == pytest.approx(conservation_gap(pred, u0), rel=1e-9, abs=1e-9)


@given(rollouts, initials, st.permutations(range(3)))
def test_gap_ignores_the_order_of_trajectories(pred, u0, order):
    _non_degenerate(u0)
    order = list(order)
    permuted = conservation_gap(pred[order], u0[order])
    assert permuted == pytest.approx(conservation_gap(pred, u0), rel=1e-12, abs=1e-12)


def test_pdebench_nrmse_counts_the_given_frames_at_zero_error():
    true = np.array([[[1.0, -1.0], [2.0, -2.0], [1.0, 1.0], [3.0, -3.0]]])  # (1, T=4, X=2)
    pred = 1.1 * true[:, 2:]  # 10% off on each predicted frame
    assert pdebench_nrmse(pred, true, given=2) == pytest.approx((0 + 0 + 0.1 + 0.1) / 4)


def test_pdebench_nrmse_is_pdebench_metric_func_on_the_completed_prediction():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(5, 12, 16))
    pred = true[:, 10:] + 0.1 * rng.normal(size=(5, 2, 16))
    full = np.concatenate([true[:, :10], pred], axis=1)  # PDEBench copies the given frames in
    # metric_func: RMSE over x / RMS of the truth over x, mean over the batch, then over time.
    err = np.sqrt(np.mean((full - true) ** 2, axis=-1)) / np.sqrt(np.mean(true**2, axis=-1))
    assert pdebench_nrmse(pred, true, given=10) == pytest.approx(err.mean(axis=0).mean())
