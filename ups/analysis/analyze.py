"""``ups analyze``: what one run's records say, stage by stage, with flags for known problems.

Everything is read from a :class:`~ups.analysis.view.RunView`; an incomplete run is analysed
as far as its history goes. The result is a JSON-ready dict (rendered by
:mod:`ups.analysis.report`); a value the source does not hold is absent or None, never 0.
"""

from __future__ import annotations

from typing import Any

from ups.analysis import keys
from ups.analysis.view import RunView, eval_metrics
from ups.golden import DEFAULT_THRESHOLDS
from ups.seeds import headline_mode

TTC_IMPROVEMENT_MIN_PCT = 5.0  # TTC must beat the corrected rollout by at least this (nRMSE)
REWARD_ERROR_SPEARMAN_MIN = 0.3  # a reward must track the candidates' true error at least this
CONSERVATION_GAP_MAX_PCT = DEFAULT_THRESHOLDS["conservation_gap"]  # the gate's threshold


def analyze(view: RunView, split: str | None = None) -> dict[str, Any]:
    """The whole analysis of one run; ``split`` defaults to ``test`` (else the first evaluated)."""
    split = split or default_split(view)
    stages = {stage: stage_summary(view, stage) for stage in view.stages}
    evaluated = eval_metrics(view, split) if split else {}
    return {
        "run": run_header(view),
        "stages": stages,
        "eval": eval_summary(evaluated, split),
        "flags": flags(view, stages, evaluated),
    }


def default_split(view: RunView) -> str | None:
    splits = keys.eval_splits(view.metrics)
    return "test" if "test" in splits else (splits[0] if splits else None)


def run_header(view: RunView) -> dict[str, Any]:
    return {
        "name": view.name,
        "source": view.source,
        "status": view.status,
        "complete": view.complete,
        "incomplete": list(view.incomplete),
        "notes": list(view.notes),
        "config_name": view.config.get("name"),
        "seed": view.seed,
        "config_hash": view.info.get("config_hash"),
    }


def series(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """Epochs and values of ``key`` over the rows that hold it."""
    held = [r for r in rows if r.get(key) is not None]
    return [r[keys.EPOCH] for r in held], [float(r[key]) for r in held]


def stage_summary(view: RunView, stage: str) -> dict[str, Any]:
    """Loss, selection (first minimum of ``val_score``), early stopping, gradient-norm and time
    statistics of one stage's history; ``train_seconds`` sums the epochs' optimisation time
    (validation excluded), ``wall_seconds`` is the stage's recorded total (None: unfinished)."""
    rows = view.rows(stage)
    final = view.metrics.get(stage)
    epochs, loss = series(rows, keys.TRAIN_LOSS)
    score_epochs, score = series(rows, keys.VAL_SCORE)
    stopped = final.get(keys.STOPPED_EARLY) if final is not None else None
    best = score_epochs[score.index(min(score))] if score else None  # first minimum, as fit()
    out = {
        "finished": final is not None,
        "epochs_logged": len(rows),
        "epochs_planned": view.config.get(stage, {}).get("train", {}).get("epochs"),
        "loss": trajectory(epochs, loss, at_epoch=best),
        "best_epoch": best,
        "best_val_score": min(score) if score else None,
        "stopped_early": stopped,
        "early_stop_epoch": rows[-1][keys.EPOCH] if stopped else None,
        "grad_norm": grad_norm_stats(rows),
        "train_seconds": sum(series(rows, keys.EPOCH_SECONDS)[1]) if rows else None,
        "wall_seconds": final.get(keys.WALL_SECONDS) if final is not None else None,
        "val": {},
    }
    val_keys = {k for r in rows for k in r if k.startswith(keys.VAL_PREFIX)} - {keys.VAL_SCORE}
    for key in [keys.VAL_SCORE, *sorted(val_keys)] if rows else []:
        out["val"][key] = trajectory(*series(rows, key), at_epoch=best)
    return out


def trajectory(epochs: list[int], values: list[float], at_epoch: int | None = None) -> dict:
    """First, final, minimum (and its epoch), the value at ``at_epoch`` and the change from
    first to final in percent of |first| (``reduction_pct`` is its negative)."""
    if not values:
        return {"epochs": [], "values": []}
    first, last = values[0], values[-1]
    change = 100.0 * (last - first) / abs(first) if first != 0 else None
    lowest = min(values)
    return {
        "epochs": epochs,
        "values": values,
        "initial": first,
        "final": last,
        "min": lowest,
        "min_epoch": epochs[values.index(lowest)],
        "at_epoch": values[epochs.index(at_epoch)] if at_epoch in epochs else None,
        "change_pct": change,
        "reduction_pct": -change if change is not None else None,
    }


def grad_norm_stats(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Pre-clip gradient norms: mean of the epoch means (epochs have equal step counts),
    the largest single step, and the first and last epochs' means."""
    _, means = series(rows, keys.GRAD_NORM_MEAN)
    _, maxima = series(rows, keys.GRAD_NORM_MAX)
    return {
        "mean": sum(means) / len(means) if means else None,
        "max": max(maxima) if maxima else None,
        "first_epoch_mean": means[0] if means else None,
        "last_epoch_mean": means[-1] if means else None,
    }


def eval_summary(evaluated: dict[str, Any], split: str | None) -> dict[str, Any]:
    """Per mode its eval metrics, the TTC numbers, and which of them the source lacks."""
    modes = keys.modes_in(evaluated)
    table = {
        m: {
            x: evaluated[keys.mode_key(m, x)]
            for x in keys.EVAL_METRICS
            if keys.mode_key(m, x) in evaluated
        }
        for m in modes
    }
    wanted = [keys.mode_key(m, x) for m in modes for x in keys.EVAL_METRICS]
    if "ttc" in modes:
        wanted += keys.TTC_KEYS
    return {
        "split": split,
        "modes": table,
        "ttc": {k: evaluated[k] for k in keys.TTC_KEYS if k in evaluated},
        "missing": [k for k in wanted if k not in evaluated],
    }


def flags(view: RunView, stages: dict[str, Any], evaluated: dict[str, Any]) -> list[dict]:
    """Known problems, each with its value, threshold and verdict (``flagged`` None: the
    source lacks the value, so it was not checked)."""
    mode = headline_mode(bool(view.config.get("ttc", {}).get("enabled")))
    gap_key = keys.mode_key(mode, "conservation_gap")
    out = [
        _flag(
            "incomplete", "run incomplete", list(view.incomplete), "any reason", not view.complete
        ),
        _threshold("ttc_improvement", keys.TTC_IMPROVEMENT, evaluated, TTC_IMPROVEMENT_MIN_PCT, -1),
        _threshold(
            "reward_error_correlation", keys.TTC_SPEARMAN, evaluated, REWARD_ERROR_SPEARMAN_MIN, -1
        ),
        _threshold("conservation_gap", gap_key, evaluated, CONSERVATION_GAP_MAX_PCT, +1),
    ]
    for stage in (s for s in keys.DIFFUSION_STAGES if s in stages):
        out.append(val_worse_flag(stage, stages[stage]))
    return out


def val_worse_flag(stage: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Flagged when the stage's train loss fell (final < initial) while a validation metric
    other than ``val_loss`` ended worse (higher) than it started: lower loss, worse physics."""
    loss = summary["loss"]
    worse = {
        k: t["change_pct"]
        for k, t in summary["val"].items()
        if k != keys.VAL_LOSS and t.get("final") is not None and t["final"] > t["initial"]
    }
    checked = len(loss["values"]) >= 2
    return {
        "flag": f"val_worse_while_train_fell:{stage}",
        "what": f"{stage}: val metrics worse (final > first epoch) while train loss fell",
        "value": worse if checked else None,
        "threshold": "train final < initial and any val metric final > initial",
        "flagged": (loss["final"] < loss["initial"] and bool(worse)) if checked else None,
    }


def _threshold(name: str, key: str, evaluated: dict, limit: float, sign: int) -> dict[str, Any]:
    """``sign`` -1: flagged below ``limit``; +1: flagged above it."""
    value = evaluated.get(key)
    relation = "<" if sign < 0 else ">"
    flagged = None if value is None else (value - limit) * sign > 0
    out = _flag(name, key, value, f"{relation} {limit:g}", flagged)
    if value is None:
        out["note"] = "missing at the source" if key not in evaluated else "undefined"
    return out


def _flag(name: str, what: str, value: Any, threshold: str, flagged: bool | None) -> dict:
    return {"flag": name, "what": what, "value": value, "threshold": threshold, "flagged": flagged}
