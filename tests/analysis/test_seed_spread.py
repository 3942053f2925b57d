import math

import numpy as np
import pytest

from ups.analysis.seed_spread import decay_ratio, decompose, predicted_cv_pct, subset_spread


def _errors(seeds: int, trajectories: int, shift_sd: float, noise_sd: float) -> np.ndarray:
    """Errors = trajectory difficulty + a per-seed shift + per-(seed, trajectory) noise."""
    rng = np.random.default_rng(7)
    difficulty = rng.uniform(0.02, 0.06, size=trajectories)
    shift = rng.normal(0.0, shift_sd, size=(seeds, 1))
    noise = rng.normal(0.0, noise_sd, size=(seeds, trajectories))
    return 0.04 + (difficulty - difficulty.mean()) + shift + noise


def test_pure_noise_is_all_noise_and_halves_at_four_times_the_trajectories():
    errors = _errors(seeds=400, trajectories=256, shift_sd=0.0, noise_sd=0.01)
    parts = decompose(errors)
    expected_noise = 100 * 0.01 / math.sqrt(256) / 0.04  # 1.5625 %
    assert parts["noise_cv_pct"] == pytest.approx(expected_noise, rel=0.02)
    assert parts["cv_pct"] == pytest.approx(expected_noise, rel=0.1)
    assert abs(parts["shift_cv_pct"]) < 0.5 * expected_noise
    halved = {**parts, "shift_cv_pct": 0.0}
    assert predicted_cv_pct(halved, 1024, 256) == pytest.approx(parts["noise_cv_pct"] / 2)


def test_a_seed_shift_is_recovered_and_kept_at_any_test_size():
    errors = _errors(seeds=400, trajectories=256, shift_sd=0.002, noise_sd=0.01)
    parts = decompose(errors)
    assert parts["shift_cv_pct"] == pytest.approx(100 * 0.002 / 0.04, rel=0.15)  # 5 %
    assert predicted_cv_pct(parts, 10**9, 256) == pytest.approx(parts["shift_cv_pct"], rel=1e-6)
    observed = math.hypot(parts["shift_cv_pct"], parts["noise_cv_pct"])
    assert predicted_cv_pct(parts, 256, 256) == pytest.approx(observed)
    assert parts["cv_pct"] == pytest.approx(observed, rel=1e-2)


def test_a_spread_below_the_noise_reports_a_negative_shift_and_predicts_noise_only():
    errors = np.array([[1.0, 3.0], [3.0, 1.0]])  # equal means, large per-trajectory movement
    parts = decompose(errors)
    assert parts["cv_pct"] == 0.0
    assert parts["noise_cv_pct"] == pytest.approx(100 * math.sqrt(2.0 / 2) / 2.0)
    assert parts["shift_cv_pct"] == pytest.approx(-parts["noise_cv_pct"])
    assert predicted_cv_pct(parts, 8, 2) == pytest.approx(parts["noise_cv_pct"] / 2)


@pytest.mark.parametrize("shape", [(1, 10), (3,), (2, 0)])
def test_refuses_what_is_not_seeds_by_trajectories(shape):
    with pytest.raises(ValueError, match="seeds >= 2"):
        decompose(np.ones(shape))


def test_decay_ratio_is_last_over_first_rms():
    x = np.linspace(0, 1, 64, endpoint=False)
    wave = np.sin(2 * np.pi * x)
    u = np.stack([np.stack([wave, 0.5 * wave, 0.01 * wave]), np.stack([wave, wave, wave])])
    np.testing.assert_allclose(decay_ratio(u), [0.01, 1.0])


def test_a_noisy_group_carries_its_share_and_the_spread_without_it_is_the_rest():
    errors = _errors(seeds=6, trajectories=100, shift_sd=0.0, noise_sd=0.001)
    rng = np.random.default_rng(3)
    noisy = np.zeros(100, dtype=bool)
    noisy[:5] = True
    errors[:, noisy] += rng.normal(0.0, 0.05, size=(6, 5))  # 5 trajectories move a lot
    parts = subset_spread(errors, noisy)
    assert parts["noise_share"] > 0.95
    assert parts["cv_without_pct"] == pytest.approx(decompose(errors[:, 5:])["cv_pct"])
    assert parts["cv_without_pct"] < parts["cv_pct"] / 3
    assert parts["mean_out"] == pytest.approx(errors[:, 5:].mean())


@pytest.mark.parametrize("subset", [np.zeros(4, bool), np.ones(4, bool), np.ones(3, bool)])
def test_subset_spread_refuses_an_empty_full_or_misshaped_group(subset):
    with pytest.raises(ValueError, match="some but not all"):
        subset_spread(np.ones((2, 4)), subset)
