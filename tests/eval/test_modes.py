"""TTC's rule as the evaluation builds it: its rewards see how far a candidate lies after the
state it is scored from (an anchored lookahead's span), checked against the data's solver; and
the oracle bound judged over the same horizon as TTC."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.conftest import SMOKE_CONFIG
from ups.config import load_config
from ups.eval.modes import new_env, oracle, ttc_rule
from ups.physics.burgers import (
    continue_cell_averages,
    downsample,
    solve_burgers,
    step_cell_averages,
)

DT = 0.05


@pytest.fixture(scope="module")
def setting():
    """The smoke config with ``fine_step`` alone, and two stored-like frames (cell averages
    of a fine solve) from two initial states."""
    weights = ["energy", "tv", "max_principle", "pde_residual"]
    cfg = load_config(
        SMOKE_CONFIG,
        [f"ttc.weights.{w}=0" for w in weights] + ["ttc.weights.fine_step=1"],
    )
    factor = cfg.data.fine_points // cfg.data.points
    x = np.arange(cfg.data.fine_points) / cfg.data.fine_points
    fine = np.stack([np.sin(2 * np.pi * x), 0.5 - np.cos(4 * np.pi * x)])
    eps = cfg.data.nu / np.pi
    start = solve_burgers(fine, eps, np.array([0.0, 0.3]), DT)[:, 1]
    return cfg, eps, factor, downsample(start, factor)


@pytest.mark.parametrize("span", [1, 2, 3])
def test_a_candidate_span_steps_on_is_scored_against_that_many_steps(setting, span):
    cfg, eps, factor, prev = setting
    rule = ttc_rule(cfg, DT, eps, prev)
    rows = np.arange(len(prev))
    exact = step_cell_averages(prev, eps, span * DT, factor, DT)
    total, terms = rule.score(exact, prev, rows, 0, span)
    np.testing.assert_allclose(total, 0.0, atol=1e-12)
    np.testing.assert_array_equal(total, terms["fine_step"])
    # Scored as one step, the same state is off by the further steps' change (percent).
    one_step = rule.score(exact, prev, rows, 0, 1)[0]
    assert np.all(one_step < -0.01) if span > 1 else np.all(one_step == total)


def test_an_anchored_rule_scores_its_spans_from_one_solve(setting, monkeypatch):
    cfg, eps, factor, prev = setting
    cfg = load_config(
        SMOKE_CONFIG,
        [f"ttc.weights.{w}=0" for w in ["energy", "tv", "max_principle", "pde_residual"]]
        + ["ttc.weights.fine_step=1", "ttc.horizon=3", "ttc.lookahead=anchored"],
    )
    calls = []

    def counting(states, eps_, times, *args):
        calls.append(len(times))
        return continue_cell_averages(states, eps_, times, *args)

    monkeypatch.setattr("ups.ttc.rewards.continue_cell_averages", counting)
    rule = ttc_rule(cfg, DT, eps, prev)
    rows = np.arange(len(prev))
    for span in (1, 2, 3):
        exact = step_cell_averages(prev, eps, span * DT, factor, DT)
        # Solved in steps of DT rather than at once: equal to the solver's own ~1e-7 (these
        # frames hold a shock), where a span scored as another is off by percent (above).
        np.testing.assert_allclose(rule.score(exact, prev, rows, span - 1, span)[0], 0, atol=3e-7)
    assert calls == [3]


class _ToySurrogate:
    """Latent = physical state (1 token of X = 2). Candidates A (closer to the truth now) and B;
    the operator's step amplifies a deviation of the second point into the first, so A leads
    farther off: from the constant truth [1, 1], A = [1, 1.1] (error 0.071, then 0.36) and
    B = [1.15, 1] (error 0.106, then 0.106)."""

    ctx = SimpleNamespace(generator=lambda stream: torch.Generator())
    candidates = torch.tensor([[1.0, 1.1], [1.15, 1.0]], dtype=torch.float64)

    def encode(self, u):
        return torch.as_tensor(u)[:, None]

    def decode(self, z):
        return z[:, 0].numpy()

    def step(self, z):
        out = z.clone()
        out[..., 0] = z[..., 0] + 5 * (z[..., 1] - 1)
        return out

    def proposer(self, generator, noise_scale, keep_step):
        return lambda z, k: self.candidates[None, :, None].expand(len(z), k, 1, 2)


@pytest.mark.parametrize(("horizon", "pick"), [(1, 0), (2, 1)])
def test_the_oracle_judges_candidates_over_ttcs_horizon(horizon, pick):
    cfg = load_config(SMOKE_CONFIG, ["ttc.candidates=2", f"ttc.horizon={horizon}"])
    env = new_env(cfg, DT, 0.0, _ToySurrogate())
    truth = np.ones((1, 3, 2))
    frames = oracle(env, truth)
    np.testing.assert_array_equal(frames[0, 0], _ToySurrogate.candidates[pick].numpy())
