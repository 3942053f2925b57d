"""TTC's rule as the evaluation builds it: its rewards see how far a candidate lies after the
state it is scored from (an anchored lookahead's span), checked against the data's solver."""

import numpy as np
import pytest

from tests.conftest import SMOKE_CONFIG
from ups.config import load_config
from ups.eval.modes import ttc_rule
from ups.physics.burgers import downsample, solve_burgers, step_cell_averages

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
