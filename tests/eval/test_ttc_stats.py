import numpy as np
import scipy.stats

from ups.eval.ttc_stats import search_summary, spearman_rows, stack_logs, term_spearman
from ups.ttc.beam import SearchLog


def test_spearman_rows_matches_scipy_and_is_nan_for_constant_rows():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    expected = [scipy.stats.spearmanr(x, y).statistic for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(spearman_rows(a, b), expected)
    assert np.isnan(spearman_rows(np.ones((1, 4)), b[:1, :4]))[0]


def _log(scores, errors, chosen):
    return SearchLog(
        scores=[np.array(scores)], errors=[np.array(errors)], chosen=[np.array(chosen)]
    )


def test_summary_scores_a_rule_that_ranks_like_the_truth_as_one():
    # Two batches of one trajectory, three candidates; the score is minus the error.
    logs = [
        _log([[-1.0, -2.0, -3.0]], [[1.0, 2.0, 3.0]], [0]),
        _log([[-3.0, -1.0, -2.0]], [[3.0, 1.0, 2.0]], [1]),
    ]
    summary = search_summary(logs)
    assert summary["score_error_spearman"] == 1.0
    assert summary["chosen_error"] == 1.0
    assert summary["candidate_error"] == 2.0
    per_step = search_summary(logs, per_step=True)
    assert len(per_step) == 1 and per_step[0]["chosen_score"] == -1.0


def test_stack_logs_pads_the_single_beam_first_step():
    log = SearchLog(
        scores=[np.zeros((2, 2)), np.ones((2, 4))],
        errors=[np.zeros((2, 2)), np.ones((2, 4))],
        chosen=[np.array([0, 1]), np.array([3, 2])],
    )
    arrays = stack_logs([log])
    assert arrays["chosen"].tolist() == [[0, 3], [1, 2]]
    assert arrays["scores"].shape == (2, 2, 4)
    assert np.isnan(arrays["scores"][:, 0, 2:]).all()


def test_each_term_is_judged_on_its_own():
    # One trajectory, three candidates, two steps: "good" ranks like the truth at both steps,
    # "bad" against it at step 1 and like it at step 2; the total is not consulted.
    errors = [np.array([[1.0, 2.0, 3.0]]), np.array([[3.0, 1.0, 2.0]])]
    good = [-e for e in errors]
    bad = [errors[0], -errors[1]]
    log = SearchLog(
        scores=[np.zeros((1, 3))] * 2,
        errors=errors,
        chosen=[np.array([0])] * 2,
        terms=[{"good": g, "bad": b} for g, b in zip(good, bad, strict=True)],
    )
    assert term_spearman([log]) == {"bad": 0.0, "good": 1.0}
    assert term_spearman([log], per_step=True) == {"bad": [-1.0, 1.0], "good": [1.0, 1.0]}
    assert term_spearman([_log([[0.0, 1.0]], [[1.0, 0.0]], [1])]) == {}  # a rule of one term
    arrays = stack_logs([log])
    np.testing.assert_array_equal(arrays["terms/bad"], [[[1.0, 2.0, 3.0], [-3.0, -1.0, -2.0]]])
