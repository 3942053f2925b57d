"""``ups compare``: runs side by side.

Config keys that differ; per eval metric each run's value with min, max, mean, std (ddof = 1)
and CV (:func:`ups.seeds.spread`); per stage the spread of the final training loss; and the
Pearson and Spearman correlations, across runs, between each stage's final training loss and
each eval metric of :data:`ups.analysis.keys.CORRELATED_METRICS` (the table that shows "lower
diffusion loss, worse physics"). A value a run lacks is listed as missing and left out of the
statistics; a statistic of fewer than 2 values (std, CV) or 3 pairs (correlations), or of a
constant input, is undefined (None), never 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ups.analysis import keys
from ups.analysis.analyze import run_header, series
from ups.analysis.view import AnalysisInputError, RunView, eval_metrics
from ups.summary import spread

MIN_CORRELATION_PAIRS = 3
SHOWN_PER_MODE = ("nrmse", "conservation_gap")  # the eval metrics reports and plots show


def compare(views: Sequence[RunView], split: str = "test") -> dict[str, Any]:
    """The comparison of two or more runs on the eval ``split``."""
    if len(views) < 2:
        raise AnalysisInputError(f"compare needs at least 2 runs, got {len(views)}")
    names = [v.name for v in views]
    evaluated = {v.name: eval_metrics(v, split) for v in views}
    losses = loss_table(views)
    return {
        "split": split,
        "runs": [run_header(v) for v in views],
        "config_diff": config_differences(views),
        "metrics": metric_table(evaluated, names),
        "training_loss": losses,
        "correlations": correlations(
            {stage: row["values"] for stage, row in losses.items()}, evaluated
        ),
    }


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> dotted keys (``operator.train.lr``); lists stay values."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(views: Sequence[RunView]) -> dict[str, dict[str, Any]]:
    """Dotted config keys whose value differs between runs (or that some run lacks):
    key -> {run: value}, runs lacking the key left out."""
    flat = {v.name: flatten(v.config) for v in views}
    out = {}
    for key in dict.fromkeys(k for f in flat.values() for k in f):
        present = {name: f[key] for name, f in flat.items() if key in f}
        values = list(present.values())
        if len(present) < len(views) or any(v != values[0] for v in values[1:]):
            out[key] = present
    return out


def column(values: dict[str, float | None], names: Sequence[str]) -> dict[str, Any]:
    """One metric over the runs: its values, which runs lack it or hold None (undefined),
    and the spread of the defined values (``var`` = std**2)."""
    defined = {n: v for n, v in values.items() if v is not None}
    stats = (
        spread({n: {"x": v} for n, v in defined.items()})["x"]
        if defined
        else dict.fromkeys(("mean", "std", "cv_pct", "min", "max"))
    )
    if len(defined) < 2:  # spread reports std 0 for one value; here it is undefined
        stats |= {"std": None, "cv_pct": None}
    std = stats["std"]
    return {
        "values": values,
        "missing": [n for n in names if n not in values],
        "undefined": [n for n, v in values.items() if v is None],
        "n": len(defined),
        **stats,
        "var": None if std is None else std**2,
    }


def metric_table(evaluated: dict[str, dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """Every numeric eval metric any run holds -> :func:`column`."""
    metrics = dict.fromkeys(k for flat in evaluated.values() for k in flat if _numeric(flat[k]))
    return {
        m: column({n: flat[m] for n, flat in evaluated.items() if m in flat}, names)
        for m in metrics
    }


def shown_metrics(metrics: dict[str, Any]) -> list[str]:
    """The metrics of :func:`metric_table` that reports and plots show: nRMSE and
    conservation gap of every mode, then the TTC numbers."""
    modes = keys.modes_in(metrics)
    shown = [keys.mode_key(m, x) for m in modes for x in SHOWN_PER_MODE] + list(keys.TTC_KEYS)
    return [k for k in shown if k in metrics]


def loss_table(views: Sequence[RunView]) -> dict[str, Any]:
    """Per stage, the final-epoch training loss of each run that finished it (runs that logged
    some epochs but did not finish are listed ``unfinished``)."""
    names = [v.name for v in views]
    out = {}
    for stage in dict.fromkeys(s for v in views for s in v.stages):
        values, unfinished = {}, []
        for view in views:
            loss = series(view.rows(stage), keys.TRAIN_LOSS)[1]
            if loss and stage in view.metrics:
                values[view.name] = loss[-1]
            elif loss:
                unfinished.append(view.name)
        out[stage] = {**column(values, names), "unfinished": unfinished}
    return out


def correlations(
    losses: dict[str, dict[str, float]],
    evaluated: dict[str, dict[str, Any]],
    metrics: Sequence[str] = keys.CORRELATED_METRICS,
) -> list[dict[str, Any]]:
    """Per (stage, metric held by some run): the runs holding both, Pearson r, Spearman rho."""
    held = [m for m in metrics if any(m in flat for flat in evaluated.values())]
    out = []
    for stage, by_run in losses.items():
        for metric in held:
            pairs = [
                (x, evaluated[run][metric])
                for run, x in by_run.items()
                if evaluated[run].get(metric) is not None
            ]
            pearson, spearman = correlation([p[0] for p in pairs], [p[1] for p in pairs])
            out.append(
                {
                    "stage": stage,
                    "metric": metric,
                    "n": len(pairs),
                    "pearson": pearson,
                    "spearman": spearman,
                }
            )
    return out


def correlation(x: Sequence[float], y: Sequence[float]) -> tuple[float | None, float | None]:
    """(Pearson r, Spearman rho) of paired values; None for fewer than 3 pairs or a constant
    side (where both are undefined)."""
    from scipy import stats  # scipy.stats is slow to import; only comparisons need it

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < MIN_CORRELATION_PAIRS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None, None
    pearson = float(stats.pearsonr(x, y).statistic)
    spearman = float(stats.spearmanr(x, y).statistic)
    return _finite(pearson), _finite(spearman)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
