"""Chosen rollout modes of one trained run, side by side, without writing into the run.

``python benchmarks/ttc_search.py RUN [--modes operator corrected ttc] [--only-reward NAME]
[--limit N] [--json FILE] [overrides ...]`` loads RUN with the overrides (``ups eval``'s keys,
e.g. ``eval.split=val ttc.horizon=4 ttc.lookahead=anchored ttc.noise_scale=0.25``), rolls the
modes out on the split's first N trajectories (all by default) exactly as ``ups eval`` would,
and prints per mode: nRMSE with its 95% bootstrap interval, the paired ratio of its nRMSE to
the operator's and, when run, to corrected's, with their intervals (resampling trajectories),
the last step's nRMSE, the conservation gap (percent), ms per trajectory, and for a candidate
rule the share of steps that took a sample rather than the operator's own step and the
score-error Spearman. With ttc, random and oracle together: TTC's position between them and
the oracle's gain over the operator. ``--only-reward`` weighs that reward 1 and every other 0.
``--json`` also writes every number, each mode's per-trajectory nRMSE, and the commit, CPU and
overrides they came from. Choose settings on val, never on test; results: docs/results.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import scipy.stats

from ups.config import load_config
from ups.data.dataset import get_dataset
from ups.eval import modes
from ups.eval.evaluate import roll_out_all
from ups.eval.surrogate import Surrogate
from ups.eval.ttc_stats import search_summary
from ups.metrics import (
    conservation_gap,
    nrmse_per_step,
    nrmse_per_trajectory_step,
    rollout_metrics,
)
from ups.records import RunRecord, require_finished_run
from ups.repro import environment_fingerprint, seed_everything
from ups.schema import RewardWeights
from ups.stages.context import StageContext


def paired_ratio(values: np.ndarray, reference: np.ndarray, seed: int) -> tuple[float, ...]:
    """``mean(values) / mean(reference)`` over trajectories (B,) each, with its 95% bootstrap
    (BCa) interval resampling trajectories together: (ratio, low, high)."""
    result = scipy.stats.bootstrap(
        (values, reference),
        lambda a, b, axis=-1: np.mean(a, axis=axis) / np.mean(b, axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=2000,
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return float(values.mean() / reference.mean()), float(interval.low), float(interval.high)


REFERENCES = ("operator", "corrected")  # what every other mode is paired with, when run


def mode_row(name, pred, truth, seconds, env, per_trajectory) -> dict[str, float | None]:
    """One mode's numbers on ``truth`` (B, S+1, X) from its prediction ``pred`` (B, S, X);
    ``per_trajectory``: every mode's per-trajectory nRMSE (B,) by name, to pair with."""
    seed = env.cfg.seed
    suite = rollout_metrics(pred, truth[:, 1:], truth[:, 0], seed=seed)
    row = {
        "nrmse": suite["nrmse"],
        "nrmse_ci_low": suite["nrmse_ci_low"],
        "nrmse_ci_high": suite["nrmse_ci_high"],
        "last_step_nrmse": float(nrmse_per_step(pred, truth[:, 1:])[-1]),
        "conservation_gap": conservation_gap(pred, truth[:, 0]),
        "ms_per_trajectory": 1e3 * seconds / len(truth),
    }
    for reference in REFERENCES:
        if reference in per_trajectory and reference != name:
            ratio, low, high = paired_ratio(per_trajectory[name], per_trajectory[reference], seed)
            row |= {f"ratio_to_{reference}": ratio, f"ratio_to_{reference}_ci": [low, high]}
    if name in env.logs:
        log = env.logs[name]
        chosen = np.concatenate([np.stack(batch.chosen, axis=1) for batch in log])
        if env.cfg.ttc.keep_operator_step and env.cfg.ttc.beam_width == 1:
            row["sampled_share"] = float(np.mean(chosen != 0))  # candidate 0: operator's step
        row["score_error_spearman"] = search_summary(log)["score_error_spearman"]
    return row


def summary(rows: dict[str, dict]) -> dict[str, float]:
    """TTC's position from random (0) to the oracle (1) and the oracle's gain over the
    operator (percent), where those modes ran."""
    out = {}
    if {"ttc", "random", "oracle"} <= rows.keys():
        span = rows["random"]["nrmse"] - rows["oracle"]["nrmse"]
        gain = rows["random"]["nrmse"] - rows["ttc"]["nrmse"]
        out["ttc_position_random_to_oracle"] = gain / span if span > 0 else None
    if {"oracle", "operator"} <= rows.keys():
        out["oracle_gain_over_operator_pct"] = 100 * (
            1 - rows["oracle"]["nrmse"] / rows["operator"]["nrmse"]
        )
    return out


def print_table(rows: dict[str, dict], extra: dict[str, float]) -> None:
    def fmt(value, spec):
        return "" if value is None else format(value, spec)

    def ratio(row, reference):
        if f"ratio_to_{reference}" not in row:
            return ""
        low, high = row[f"ratio_to_{reference}_ci"]
        return f"{row[f'ratio_to_{reference}']:.3f} [{low:.3f}, {high:.3f}]"

    print(
        "| mode | nRMSE [95% CI] | / operator [95% CI] | / corrected [95% CI] | last step | "
        "gap % | sampled | Spearman | ms/traj |"
    )
    print("|---" * 9 + "|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['nrmse']:.5f} [{r['nrmse_ci_low']:.5f}, {r['nrmse_ci_high']:.5f}] "
            f"| {ratio(r, 'operator')} | {ratio(r, 'corrected')} | {r['last_step_nrmse']:.4f} "
            f"| {r['conservation_gap']:.2g} "
            f"| {fmt(r.get('sampled_share'), '.2f')} | "
            f"{fmt(r.get('score_error_spearman'), '.2f')} | {r['ms_per_trajectory']:.0f} |"
        )
    for key, value in extra.items():
        print(f"{key}: {fmt(value, '.3f')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--modes", nargs="+", default=["operator", "corrected", "ttc"])
    parser.add_argument("--only-reward", choices=sorted(vars(RewardWeights())))
    parser.add_argument("--limit", type=int, help="the split's first N trajectories")
    parser.add_argument("--json", type=Path, help="also write every number here")
    args = parser.parse_args()
    unknown = sorted(set(args.modes) - set(modes.MODES))
    if unknown:
        parser.error(f"unknown modes {unknown}; known: {sorted(modes.MODES)}")
    overrides = list(args.overrides)
    if args.only_reward:
        weights = {name: float(name == args.only_reward) for name in vars(RewardWeights())}
        overrides += [f"ttc.weights.{name}={w}" for name, w in weights.items()]

    run = Path(args.run)
    require_finished_run(run)
    cfg = load_config(run / "config.yaml", overrides, run_here=True)
    seed_everything(cfg.seed, cfg.deterministic, cfg.threads)
    dataset = get_dataset(cfg.data, cfg.paths.data_cache, progress=False)
    ctx = StageContext.from_dataset(cfg, dataset, RunRecord(run))
    env = modes.new_env(cfg, dataset.dt, dataset.eps, Surrogate.load(ctx, cfg.eval.corrector))
    truth = dataset.split(cfg.eval.split)[: args.limit]
    names = [m for m in modes.MODES if m in {"operator", *args.modes}]  # the operator is paired
    preds, seconds = roll_out_all(env, names, truth, cfg.eval.batch_size, progress=True)

    per_trajectory = {
        name: nrmse_per_trajectory_step(pred, truth[:, 1:]).mean(axis=1)
        for name, pred in preds.items()
    }
    rows = {
        name: mode_row(name, preds[name], truth, seconds[name], env, per_trajectory)
        for name in names
    }
    extra = summary(rows)
    print(f"{run} {cfg.eval.split} ({len(truth)} trajectories), overrides: {overrides}")
    print_table(rows, extra)
    if args.json:
        record = {
            "run": str(run),
            "split": cfg.eval.split,
            "trajectories": len(truth),
            "overrides": overrides,
            "environment": environment_fingerprint(cfg.device),
            "modes": rows,
            **extra,
            "per_trajectory_nrmse": {name: v.tolist() for name, v in per_trajectory.items()},
        }
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
