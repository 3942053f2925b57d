import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ups.physics.burgers import downsample, solve_burgers, step_cell_averages
from ups.physics.invariants import energy, max_abs, total_variation
from ups.ttc.rewards import (
    REWARDS,
    Continuations,
    fine_continuations,
    score,
    solver_continuations,
    weighted_total,
)

EPS = 0.01 / np.pi
DT = 0.05
POINTS = 128
X = np.arange(POINTS) / POINTS
NAMES = ["mass", "energy", "tv", "max_principle", "pde_residual", "solver_step", "fine_step"]


def _smooth_initial_states(batch: int, seed: int = 0) -> np.ndarray:
    """Two sines, wavenumbers 2 pi {1, 2}, amplitudes U(0, 0.5): no shock before t = 0.1."""
    rng = np.random.default_rng(seed)
    waves = rng.integers(1, 3, size=(batch, 2, 1))
    amplitude = rng.uniform(0.0, 0.5, size=(batch, 2, 1))
    phase = rng.uniform(0.0, 2 * np.pi, size=(batch, 2, 1))
    return np.sum(amplitude * np.sin(2 * np.pi * waves * X + phase), axis=1)


@pytest.fixture(scope="module")
def reference_step() -> tuple[np.ndarray, np.ndarray]:
    """(c, prev), each (64, 128): one reference-solver step of length DT; prev is also u0."""
    u = solve_burgers(_smooth_initial_states(64), EPS, np.array([0.0, DT]), dt_max=1e-3)
    return u[:, 1], u[:, 0]


def _all(c, prev, u0):
    return {name: reward(c, prev, u0, DT, EPS) for name, reward in REWARDS.items()}


# --- hand-computed values ------------------------------------------------------------------

SINE = np.sin(2 * np.pi * X)[None]  # mean 0, rms 1/sqrt(2), E 1/4, TV 4, max 1


def test_registry_names():
    assert list(REWARDS) == NAMES


def test_mass_reward_of_a_known_offset():
    u0 = np.sqrt(2) * SINE  # rms 1
    np.testing.assert_allclose(REWARDS["mass"](u0 + 0.1, u0, u0, DT, EPS), [-0.1], rtol=1e-12)


def test_energy_reward_of_a_known_growth():
    # E(1.1 u) / E(u) = 1.21: a 21% increase.
    np.testing.assert_allclose(REWARDS["energy"](1.1 * SINE, SINE, SINE, DT, EPS), [-0.21])
    assert REWARDS["energy"](0.9 * SINE, SINE, SINE, DT, EPS) == 0.0


def test_tv_reward_of_a_known_growth():
    # sin(4 pi x) has twice the total variation of sin(2 pi x).
    doubled = np.sin(4 * np.pi * X)[None]
    np.testing.assert_allclose(REWARDS["tv"](doubled, SINE, SINE, DT, EPS), [-1.0], rtol=1e-12)


def test_max_principle_reward_of_a_known_overshoot():
    u0 = 2 * SINE
    c = 2.5 * SINE  # overshoot 0.5 of a bound 2
    np.testing.assert_allclose(REWARDS["max_principle"](c, SINE, u0, DT, EPS), [-0.25])


def test_solver_step_reward_of_a_known_overshoot(reference_step):
    c, prev = reference_step
    # 10% beyond the solver's own step from prev (itself within 1e-5 of c) scores -0.1.
    np.testing.assert_allclose(
        REWARDS["solver_step"](1.1 * c, prev, prev, DT, EPS), -0.1, atol=2e-5
    )
    frozen, true = (REWARDS["solver_step"](u, prev, prev, DT, EPS) for u in (prev, c))
    assert np.all(frozen < true)  # no step at all is farther from the physics than the step


def test_fine_step_reward_knows_the_next_stored_frame_and_the_coarse_one_does_not():
    # Stored frames as ups/data makes them: cell averages of a field solved 8x finer, through
    # the shock (t = 0.3 to 0.35 from a unit sine).
    x_fine = np.arange(8 * POINTS) / (8 * POINTS)
    fine = solve_burgers(np.sin(2 * np.pi * x_fine)[None], EPS, np.array([0.0, 0.3, 0.35]), 1e-3)
    prev, nxt = downsample(fine[:, 1], 8), downsample(fine[:, 2], 8)
    exact = REWARDS["fine_step"](nxt, prev, prev, DT, EPS)
    assert -exact[0] < 1e-7  # the exact continuation, to the solvers' own error
    assert -REWARDS["solver_step"](nxt, prev, prev, DT, EPS)[0] > 1e-3  # off on 128 points
    np.testing.assert_allclose(
        REWARDS["fine_step"](1.1 * nxt, prev, prev, DT, EPS), -0.1, atol=1e-6
    )
    # Told another refinement, it reads the frames as other averages: no longer exact.
    off = REWARDS["fine_step"](nxt, prev, prev, DT, EPS, factor=2)
    assert -off[0] > 100 * -exact[0]
    _, parts = score(nxt, prev, prev, DT, EPS, {"fine_step": 1.0}, fine_factor=2)
    assert parts["fine_step"][0] == off[0]


class _CountingSolve:
    """A continuation solve that counts its calls: what :class:`Continuations` saves."""

    def __init__(self, solve):
        self.solve, self.calls = solve, []

    def __call__(self, states, times):
        self.calls.append((len(states), len(times)))
        return self.solve(states, times)


def test_continuations_solve_each_source_once_for_all_its_multiples(reference_step):
    c, prev = reference_step
    repeated = np.repeat(prev[:4], 3, axis=0)  # 3 candidates per source, as in a beam
    counting = _CountingSolve(fine_continuations(EPS, 8, multiples=3)._solve)
    continuation = Continuations(counting, multiples=3)
    ahead = [continuation(repeated, span * DT) for span in (1, 2, 3)]
    assert counting.calls == [(4, 3)]  # the 4 distinct sources, once, to 3 * DT
    for span, target in enumerate(ahead, start=1):
        alone = step_cell_averages(prev[:4], EPS, span * DT, 8, DT)
        # Span 1 is the same solve; later spans are solved in steps of DT rather than at once.
        tolerance = 0.0 if span == 1 else 1e-9
        np.testing.assert_allclose(target, np.repeat(alone, 3, axis=0), rtol=0, atol=tolerance)
    continuation(repeated[3:], DT)  # other sources: solved afresh
    continuation(repeated, 4 * DT)  # past the multiples kept: solved afresh
    assert counting.calls == [(4, 3), (3, 3), (4, 3)]


def test_continuations_of_one_multiple_are_the_rewards_own_solves(reference_step):
    c, prev = reference_step
    for name, continuation in (
        ("solver_step", solver_continuations(EPS)),
        ("fine_step", fine_continuations(EPS)),
    ):
        alone = REWARDS[name](c, prev, prev, DT, EPS)
        kept = REWARDS[name](c, prev, prev, DT, EPS, continuation=continuation)
        np.testing.assert_array_equal(kept, alone)


def test_continuations_refuse_no_multiples():
    with pytest.raises(ValueError, match="multiples"):
        Continuations(lambda states, times: states, multiples=0)


def test_pde_residual_reward_of_a_frozen_sine():
    # c == prev == sin(2 pi x): time term 0, so ||R|| / ||0|| is floored: a huge penalty.
    assert REWARDS["pde_residual"](SINE, SINE, SINE, DT, EPS)[0] < -1e6


def test_pde_residual_reward_of_a_steady_constant_is_zero():
    u = np.full((1, 16), 0.3)
    assert REWARDS["pde_residual"](u, u, u, DT, EPS)[0] == 0.0


# --- the reference solver satisfies every law ----------------------------------------------


def test_a_reference_step_scores_zero(reference_step):
    c, prev = reference_step
    rewards = _all(c, prev, prev)
    for name in ("mass", "energy", "tv", "max_principle"):
        np.testing.assert_allclose(rewards[name], 0.0, atol=1e-12, err_msg=name)
    # The midpoint residual is O(dt^2), not 0: measured median 0.014, max 0.062 at DT = 0.05.
    assert np.median(-rewards["pde_residual"]) < 0.03
    assert np.max(-rewards["pde_residual"]) < 0.1
    # The reward's own coarser substeps against the reference's dt <= 1e-3: equal to ~1e-7.
    assert np.max(-rewards["solver_step"]) < 1e-5
    # These frames are point values, which fine_step reads as cell averages: off by O(dx^2).
    assert np.max(-rewards["fine_step"]) < 1e-3


PERTURBATIONS = {
    # 1% of the typical amplitude, a fresh draw per grid point: breaks every law.
    "noise": (lambda c: c + 0.01 * np.random.default_rng(1).standard_normal(c.shape), NAMES),
    # 10% larger: energy, TV and max|u| grow; the mean of a two-sine state stays 0.
    "scale": (
        lambda c: 1.1 * c,
        ["energy", "tv", "max_principle", "pde_residual", "solver_step", "fine_step"],
    ),
}


@pytest.mark.parametrize("perturbation", list(PERTURBATIONS))
def test_perturbed_steps_score_lower(reference_step, perturbation):
    c, prev = reference_step
    perturb, broken = PERTURBATIONS[perturbation]
    perturbed = perturb(c)
    true, bad = _all(c, prev, prev), _all(perturbed, prev, prev)
    for name in NAMES:
        assert np.mean(bad[name]) <= np.mean(true[name]), name
    for name in broken:
        assert np.mean(bad[name]) < np.mean(true[name]) - 1e-3, name
    # The residual separates them by far more than its own O(dt^2) floor.
    assert np.median(bad["pde_residual"]) < 5 * np.median(true["pde_residual"])


# --- properties ----------------------------------------------------------------------------

fields = arrays(np.float64, (3, 16), elements=st.floats(-10, 10, allow_nan=False))


def _non_degenerate(c, prev, u0) -> None:
    assume(np.all(np.sqrt(np.mean(u0**2, axis=-1)) > 1e-3))
    assume(np.all(energy(prev) > 1e-6) and np.all(total_variation(prev) > 1e-3))
    assume(np.all(max_abs(u0) > 1e-3))
    assume(np.all(np.linalg.norm(c - prev, axis=-1) > 1e-3))


@given(fields, fields, fields)
def test_rewards_are_never_positive(c, prev, u0):
    _non_degenerate(c, prev, u0)
    for name, values in _all(c, prev, u0).items():
        assert values.shape == (3,), name
        assert np.all(values <= 0), name


@given(fields, fields, fields, st.integers(0, 15))
def test_rewards_ignore_periodic_shifts(c, prev, u0, shift):
    _non_degenerate(c, prev, u0)
    shifted = _all(*(np.roll(u, shift, axis=-1) for u in (c, prev, u0)))
    for name, values in _all(c, prev, u0).items():
        np.testing.assert_allclose(shifted[name], values, rtol=1e-9, atol=1e-9, err_msg=name)


@given(fields, fields, fields)
def test_rewards_respect_the_burgers_symmetry(c, prev, u0):
    # u(x) -> -u(-x) maps solutions to solutions; on x_j = j / X, -x_j is x_{-j mod X}.
    _non_degenerate(c, prev, u0)
    mirrored = _all(*(-np.roll(u[..., ::-1], 1, axis=-1) for u in (c, prev, u0)))
    for name, values in _all(c, prev, u0).items():
        np.testing.assert_allclose(mirrored[name], values, rtol=1e-9, atol=1e-9, err_msg=name)


def test_symmetry_and_shift_hold_on_a_reference_step(reference_step):
    c, prev = reference_step
    c = 1.2 * c + 0.01 * np.random.default_rng(2).standard_normal(c.shape)  # every law broken
    rewards = _all(c, prev, prev)
    mirrored = _all(*(-np.roll(u[..., ::-1], 1, axis=-1) for u in (c, prev, prev)))
    shifted = _all(*(np.roll(u, 37, axis=-1) for u in (c, prev, prev)))
    for name, values in rewards.items():
        assert np.all(values < 0), name
        np.testing.assert_allclose(mirrored[name], values, rtol=1e-10, err_msg=name)
        np.testing.assert_allclose(shifted[name], values, rtol=1e-10, err_msg=name)


components = st.fixed_dictionaries(
    {name: arrays(np.float64, (4,), elements=st.floats(-100, 0)) for name in NAMES}
)
weights = st.dictionaries(st.sampled_from(NAMES), st.floats(0, 10))


@given(
    components, weights, st.sampled_from(NAMES), arrays(np.float64, (4,), elements=st.floats(0, 10))
)
def test_total_is_monotone_in_each_component(parts, w, name, increase):
    raised = {**parts, name: parts[name] + increase}
    assert np.all(weighted_total(raised, w) >= weighted_total(parts, w))


def test_score_is_the_weighted_sum_of_its_components(reference_step):
    c, prev = reference_step
    c = 1.1 * c
    w = {"energy": 2.0, "pde_residual": 0.5, "mass": 0.0}
    total, parts = score(c, prev, prev, DT, EPS, w)
    assert list(parts) == ["energy", "pde_residual"]  # weight 0 computes nothing ...
    np.testing.assert_allclose(total, 2.0 * parts["energy"] + 0.5 * parts["pde_residual"])
    assert np.all(total < 0)
    again, every = score(c, prev, prev, DT, EPS, w, diagnostic=NAMES)  # ... unless asked
    assert list(every) == NAMES
    np.testing.assert_array_equal(again, total)  # and what is asked selects nothing
    with pytest.raises(ValueError, match="'entropy'"):
        score(c, prev, prev, DT, EPS, w, diagnostic=["entropy"])


def test_score_refuses_unknown_or_negative_weights():
    with pytest.raises(ValueError, match="'entropy'"):
        score(SINE, SINE, SINE, DT, EPS, {"entropy": 1.0})
    with pytest.raises(ValueError, match="'tv'"):
        score(SINE, SINE, SINE, DT, EPS, {"tv": -1.0})


@pytest.mark.parametrize("name", NAMES)
def test_rewards_validate_inputs(name):
    reward = REWARDS[name]
    with pytest.raises(ValueError, match=r"\(N, X\)"):
        reward(SINE, SINE[:, :-1], SINE, DT, EPS)
    with pytest.raises(ValueError, match="NaN"):
        reward(SINE * np.nan, SINE, SINE, DT, EPS)
    with pytest.raises(ValueError, match="dt > 0"):
        reward(SINE, SINE, SINE, 0.0, EPS)
