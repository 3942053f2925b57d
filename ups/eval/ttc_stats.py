"""Statistics of candidate searches: does a selection rule's score track the true error?

Input: the :class:`~ups.ttc.beam.SearchLog` of each evaluated batch. Per step, each log holds
scores and true errors (B, N) of N candidates per trajectory, the chosen index (B,), and the
rule's terms (B, N) by name (TTC's: each reward weighted or in ``ttc.diagnostic_rewards``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.stats

from ups.ttc.beam import SearchLog


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of ``a`` with the same row of ``b`` (M, N) -> (M,);
    NaN for a row where either side is constant (no ranking to compare)."""
    ra = scipy.stats.rankdata(a, axis=-1)
    rb = scipy.stats.rankdata(b, axis=-1)
    ra = ra - ra.mean(axis=-1, keepdims=True)
    rb = rb - rb.mean(axis=-1, keepdims=True)
    norm = np.sqrt((ra**2).sum(axis=-1) * (rb**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, (ra * rb).sum(axis=-1) / norm, np.nan)


def step_stats(log: SearchLog, step: int) -> dict[str, np.ndarray]:
    """Per-trajectory numbers (B,) of one step: score/error correlation, chosen vs mean error."""
    scores, errors, chosen = log.scores[step], log.errors[step], log.chosen[step]
    rows = np.arange(len(chosen))
    return {
        # Correlation with minus the error: +1 means the score ranks candidates as the truth does.
        "score_error_spearman": spearman_rows(scores, -errors),
        "chosen_error": errors[rows, chosen],
        "candidate_error": errors.mean(axis=1),
        "candidate_error_spread": errors.std(axis=1),
        "chosen_score": scores[rows, chosen],
        "candidate_score": scores.mean(axis=1),
    }


def search_summary(batches: Sequence[SearchLog], per_step: bool = False):
    """Means over trajectories (and steps) of :func:`step_stats`; with ``per_step`` a list of
    one dict per step instead. NaN correlations (constant rows) are left out of the means."""
    table = []
    for step in range(len(batches[0].scores)):
        stats = [step_stats(log, step) for log in batches]
        table.append({k: np.concatenate([st[k] for st in stats]) for k in SEARCH_KEYS})
    if per_step:
        return [{k: _mean(v) for k, v in row.items()} for row in table]
    return {k: _mean(np.concatenate([row[k] for row in table])) for k in SEARCH_KEYS}


def term_spearman(batches: Sequence[SearchLog], per_step: bool = False) -> dict:
    """Each logged term's Spearman with minus the true error, as ``score_error_spearman`` is the
    total's: ``{name: mean over trajectories and steps}``, or with ``per_step`` ``{name: [mean
    of step 1, step 2, ...]}``; ``{}`` for a rule that logged no terms. The candidates are those
    along the path the rule's total chose, so a term is judged where the search went."""
    first = batches[0].terms
    out = {}
    for name in sorted(first[0]) if first else ():
        steps = [
            np.concatenate([spearman_rows(log.terms[s][name], -log.errors[s]) for log in batches])
            for s in range(len(first))
        ]
        out[name] = [_mean(rho) for rho in steps] if per_step else _mean(np.concatenate(steps))
    return out


def stack_logs(batches: Sequence[SearchLog]) -> dict[str, np.ndarray]:
    """The logs as arrays over all trajectories: ``chosen`` (B, S) and ``scores``/``errors``
    and each term as ``terms/<name>`` (B, S, N_max), NaN-padded where early steps had fewer
    candidates (a single beam)."""
    width = max(s.shape[1] for log in batches for s in log.scores)

    def pad(a):
        return np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=np.nan)

    out = {"chosen": np.concatenate([np.stack(log.chosen, axis=1) for log in batches])}
    series = {key: [getattr(log, key) for log in batches] for key in ("scores", "errors")}
    for name in batches[0].terms[0] if batches[0].terms else ():
        series[f"terms/{name}"] = [[step[name] for step in log.terms] for log in batches]
    for key, per_batch in series.items():
        out[key] = np.concatenate(
            [np.stack([pad(a) for a in steps], axis=1) for steps in per_batch]
        )
    return out


# Metric key prefix of one reward's Spearman with minus the true error, e.g.
# ``ttc/reward_spearman_solver_step`` (:func:`term_spearman` of TTC's logs).
REWARD_SPEARMAN = "reward_spearman_"
SEARCH_KEYS = (
    "score_error_spearman",
    "chosen_error",
    "candidate_error",
    "candidate_error_spread",
    "chosen_score",
    "candidate_score",
)


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else None
