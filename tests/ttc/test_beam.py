"""Beam search on a toy problem whose best path is known: selection is per trajectory, wider
beams and lookahead find what greedy choice misses, and the log records what was seen."""

import numpy as np
import pytest
import torch

from ups.ttc.beam import Rule, beam_search

X = 4  # toy grid: a state is its value repeated over X points


def decode(z: torch.Tensor) -> np.ndarray:
    return z.reshape(len(z), 1).double().numpy().repeat(X, axis=1)


def shifts(*values: float):
    """Candidates ``z + v`` for each v (deterministic, same for every row)."""
    offsets = torch.tensor(values)

    def propose(z, k):
        assert k == len(values)
        return z[:, None] + offsets.reshape(1, k, 1, 1)

    return propose


def run(propose, rule, k, **kwargs):
    z0 = torch.zeros(2, 1, 1)
    return beam_search(z0, decode(z0), 3, propose, decode, rule, k, **kwargs)


def test_each_trajectory_follows_its_own_best_candidates():
    targets = np.array([1.0, -1.0])  # trajectory 0 should climb, trajectory 1 descend

    def score(c, prev, rows, step):
        return -np.abs(c[:, 0] - targets[rows] * (step + 1))

    frames, log = run(shifts(-1.0, 0.0, 1.0), Rule.plain("toy", score), 3)
    np.testing.assert_array_equal(frames[:, :, 0], [[1, 2, 3], [-1, -2, -3]])
    assert [c.tolist() for c in log.chosen] == [[2, 0]] * 3
    assert all(s.shape == (2, 3) for s in log.scores)


def _trap(c, prev, rows, step):
    """Step 0 prefers +1 slightly; from +1 every next move costs 10, from -1 nothing."""
    if step == 0:
        return np.where(c[:, 0] > 0, 0.0, -1.0)
    return np.where(prev[:, 0] > 0, -10.0, 0.0)


def test_a_wider_beam_escapes_the_greedy_trap():
    propose = shifts(-1.0, 1.0)
    greedy, _ = run(propose, Rule.plain("trap", _trap), 2, beam_width=1)
    wide, _ = run(propose, Rule.plain("trap", _trap), 2, beam_width=2)
    assert greedy[0, 0, 0] == 1.0  # greedy took the bait
    assert wide[0, 0, 0] == -1.0  # the beam kept the other branch and it won


def test_lookahead_escapes_the_greedy_trap():
    lookahead = lambda z: z  # noqa: E731 - the operator stands still
    frames, _ = run(shifts(-1.0, 1.0), Rule.plain("trap", _trap), 2, horizon=2, lookahead=lookahead)
    assert frames[0, 0, 0] == -1.0


def _unit_drift(c, prev, rows, step, span):
    """The exact dynamics move a state by +1 a step: distance to that, ``span`` steps on."""
    return -np.abs(c[:, 0] - (prev[:, 0] + span)), {}


def _corrects_from_below(z):
    """An operator that steps +1 but brings any state below the truth's path back onto it."""
    return torch.clamp(z + 1, min=2.0)


@pytest.mark.parametrize(("anchored", "chosen"), [(False, 0), (True, 1)])
def test_an_anchored_lookahead_judges_a_candidate_by_where_it_leads(anchored, chosen):
    # Candidate 0 (1.2) is nearer the truth (1) now, but its error persists under the operator;
    # candidate 1 (0.7) is farther, and the operator then lands on the truth (2). A chain of
    # one-step scores sees only the operator's step from 0.7 (off by 0.3): 0.2 vs 0.6, it
    # keeps 1.2. Scored from where both started: 0.2 + 0.2 vs 0.3 + 0, it takes 0.7.
    _, log = run(
        shifts(1.2, 0.7),
        Rule("drift", _unit_drift),
        2,
        horizon=2,
        lookahead=_corrects_from_below,
        anchored=anchored,
    )
    assert log.chosen[0].tolist() == [chosen, chosen]
    expected = [-0.4, -0.3] if anchored else [-0.2, -0.6]
    np.testing.assert_allclose(log.scores[0][0], expected, atol=1e-6)  # float32 latents


def test_a_lookahead_passes_the_rule_its_source_state_and_span():
    seen = []

    def record(c, prev, rows, step, span):
        seen.append((step, span, prev[0, 0]))
        return np.zeros(len(c)), {}

    for anchored in (False, True):
        seen.clear()
        run(
            shifts(1.0, 2.0),
            Rule("r", record),
            2,
            horizon=3,
            lookahead=lambda z: z + 10,
            anchored=anchored,
        )
        # Step 0: the candidates from 0, then two lookahead steps from candidate 1.0 (row 0).
        first = seen[:3]
        expected = (
            [(0, 1, 0.0), (1, 2, 0.0), (2, 3, 0.0)]
            if anchored
            else [(0, 1, 0.0), (1, 1, 1.0), (2, 1, 11.0)]
        )
        assert first == expected


def test_horizon_needs_a_lookahead_and_errors_are_logged():
    rule = Rule.plain("zero", lambda c, prev, rows, step: np.zeros(len(c)))
    with pytest.raises(ValueError, match="lookahead"):
        run(shifts(0.0, 1.0), rule, 2, horizon=2)
    _, log = run(shifts(0.0, 1.0), rule, 2, error=lambda c, rows, step: c[:, 0] + rows)
    np.testing.assert_array_equal(log.errors[0], [[0, 1], [1, 2]])
    # Ties go to the lower index: the first candidate, deterministically.
    assert [c.tolist() for c in log.chosen] == [[0, 0]] * 3


def test_a_rules_terms_are_logged_per_step_for_each_candidate():
    def score(c, prev, rows, step, span):
        up, near = c[:, 0], -np.abs(c[:, 0] - prev[:, 0])
        return up + near, {"up": up, "near": near}

    _, log = run(shifts(-1.0, 1.0), Rule("sum", score), 2, beam_width=2)
    assert [sorted(t) for t in log.terms] == [["near", "up"]] * 3
    np.testing.assert_array_equal(log.terms[0]["up"], [[-1, 1], [-1, 1]])
    assert log.terms[1]["near"].shape == (2, 4)  # two beams x two candidates
    np.testing.assert_array_equal(log.terms[1]["up"] + log.terms[1]["near"], log.scores[1])
    assert Rule.plain("one", _trap).score(np.ones((1, X)), np.ones((1, X)), [0], 0, 1)[1] == {}
