"""``ups eval``: roll every mode out on a split, in physical space, and write the results.

Outputs go to ``<run>/eval/<split>/`` (``metrics.json``, ``report.md``, ``config.yaml``,
``per_trajectory.npz``: ``<mode>/nrmse`` and ``<mode>/conservation_gap`` per trajectory (B,),
whose means are the metrics of those names; ``ttc_log.npz``, PNG plots); the flat metrics are
also merged into the run's ``metrics.json`` under ``eval/<split>`` and mirrored to W&B. Keys
are ``<mode>/<metric>``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ups import atomic
from ups.config import ConfigError, config_diff, config_hash, load_config, to_yaml
from ups.data.dataset import get_dataset
from ups.eval import modes as mode_fns
from ups.eval.plots import plot_error_curves, plot_spacetime
from ups.eval.report import markdown_report
from ups.eval.surrogate import Surrogate
from ups.eval.ttc_stats import REWARD_SPEARMAN, search_summary, stack_logs, term_spearman
from ups.metrics import (
    conservation_gap_per_trajectory,
    nrmse_per_step,
    nrmse_per_trajectory_step,
    pdebench_nrmse,
    rollout_metrics,
    ttc_improvement,
)
from ups.physics.burgers import solve_burgers
from ups.physics.spectral import interpolate
from ups.records import RunNotFoundError, RunRecord, require_finished_run
from ups.repro import seed_everything
from ups.runlock import run_lock
from ups.schema import PDEBENCH_GIVEN, UpsConfig
from ups.stages.context import StageContext
from ups.tracking import WandbMirror

PER_TRAJECTORY_FILE = "per_trajectory.npz"


def evaluate(
    run_dir: str | Path, overrides: Sequence[str] = (), progress: bool = True
) -> dict[str, Any]:
    """Evaluate the trained run in ``run_dir``; returns the flat metrics written. The run must
    be finished, and is locked against writers while it is evaluated."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise RunNotFoundError(f"{run_dir} is not a run folder (no config.yaml)")
    with run_lock(run_dir, "eval"):
        require_finished_run(run_dir)
        return _evaluate(run_dir, overrides, progress)


def _evaluate(run_dir: Path, overrides: Sequence[str], progress: bool) -> dict[str, Any]:
    cfg = load_config(run_dir / "config.yaml", overrides, run_here=True)
    seed_everything(cfg.seed, cfg.deterministic, cfg.threads)
    dataset = get_dataset(cfg.data, cfg.paths.data_cache, progress=progress)
    ctx = StageContext.from_dataset(cfg, dataset, RunRecord(run_dir))
    surrogate = Surrogate.load(ctx, cfg.eval.corrector)
    if cfg.ttc.enabled:  # TTC samples its candidates from the corrector
        surrogate.require_corrector(", or evaluate with ttc.enabled=false")
    has_corrector = surrogate.corrector_model is not None
    env = mode_fns.new_env(cfg, dataset.dt, dataset.eps, surrogate, _fno_baseline(ctx))
    names = modes_to_run(cfg, has_fno=env.baseline is not None, has_corrector=has_corrector)
    truth = dataset.split(cfg.eval.split)
    preds, seconds = roll_out_all(env, names, truth, cfg.eval.batch_size, progress)

    metrics: dict[str, Any] = {"split": cfg.eval.split, "trajectories": len(truth)}
    for name in names:
        suite = rollout_metrics(preds[name], truth[:, 1:], truth[:, 0], seed=cfg.seed)
        metrics |= {f"{name}/{k}": v for k, v in suite.items()}
        metrics[f"{name}/seconds_per_trajectory"] = seconds[name] / len(truth)
    if cfg.eval.solver_reference:
        metrics["reference_solver/seconds_per_trajectory"] = time_reference_solver(
            cfg, truth
        ) / len(truth)
    metrics |= _ttc_summary(metrics, env.logs)
    if cfg.eval.pdebench:
        pdebench_env = mode_fns.new_env(cfg, dataset.dt, dataset.eps, surrogate, env.baseline)
        metrics |= pdebench_metrics(pdebench_env, names, truth, cfg.eval.batch_size, progress)
    out = run_dir / "eval" / cfg.eval.split
    _write_outputs(out, cfg, metrics, preds, truth, env.logs)
    record = RunRecord(run_dir)
    record.update_metrics({f"eval/{cfg.eval.split}": metrics})
    _mirror(cfg, record, metrics, env.logs)
    return metrics


def pdebench_metrics(env, names, truth, batch_size, progress) -> dict[str, float]:
    """``<mode>/pdebench_nrmse`` of every mode but the candidate rules: rolled out from the last
    of :data:`PDEBENCH_GIVEN` true frames of ``truth`` (B, T, X), scored as PDEBench's
    ``metric_func`` (the given frames at zero error)."""
    names = [n for n in names if n not in mode_fns.CANDIDATE_MODES]
    preds, _ = roll_out_all(env, names, truth[:, PDEBENCH_GIVEN - 1 :], batch_size, progress)
    return {f"{n}/pdebench_nrmse": pdebench_nrmse(preds[n], truth, PDEBENCH_GIVEN) for n in names}


def modes_to_run(cfg: UpsConfig, has_fno: bool, has_corrector: bool) -> list[str]:
    """Every mode of :data:`ups.eval.modes.MODES` this config and run allow."""
    skip = set() if cfg.ttc.enabled else set(mode_fns.CANDIDATE_MODES)
    if not has_fno:
        skip.add("fno")
    if not has_corrector:
        skip |= set(mode_fns.CORRECTOR_MODES)
    return [name for name in mode_fns.MODES if name not in skip]


def roll_out_all(env, names, truth, batch_size, progress):
    """Predictions (B, S, X) and total wall seconds of every mode over ``truth`` (B, S+1, X)."""
    preds = {name: [] for name in names}
    seconds = dict.fromkeys(names, 0.0)
    starts = range(0, len(truth), batch_size)
    for start in tqdm(starts, desc="evaluating", unit="batch", disable=not progress):
        u = truth[start : start + batch_size]
        env.frames = {}
        for name in names:
            begin = time.perf_counter()
            env.frames[name] = mode_fns.MODES[name](env, u)
            seconds[name] += time.perf_counter() - begin
            preds[name].append(env.frames[name])
    for name, source in mode_fns.REUSES.items():
        if name in seconds:
            seconds[name] += seconds[source]
    return {name: np.concatenate(p) for name, p in preds.items()}, seconds


def _fno_baseline(ctx: StageContext):
    """``(u0 (B, X), steps) -> frames`` of the FNO baseline (``eval.baseline_run``'s, else the
    run's own), or None if there is none."""
    from ups.stages.fno import fno_rollout, load_fno

    if ctx.cfg.eval.baseline_run:
        ctx = _baseline_context(Path(ctx.cfg.eval.baseline_run), ctx)
    elif not ctx.record.checkpoint_path("fno").is_file():
        return None

    model = load_fno(ctx)

    @torch.no_grad()
    def run(u0: np.ndarray, steps: int) -> np.ndarray:
        return ctx.physical(fno_rollout(model, ctx.to_model(u0), ctx.cond(len(u0)), steps))

    return run


def _baseline_context(run_dir: Path, ctx: StageContext) -> StageContext:
    """The stage context of a separate baseline run, which must share this run's dataset."""
    if not (run_dir / "config.yaml").is_file():
        raise RunNotFoundError(f"eval.baseline_run: {run_dir} is not a run folder")
    cfg = load_config(run_dir / "config.yaml")
    if cfg.data != ctx.cfg.data:
        raise ConfigError(
            f"eval.baseline_run: {run_dir} was trained on another dataset; differing keys: "
            f"{config_diff(asdict(cfg.data), asdict(ctx.cfg.data))}"
        )
    return StageContext.from_dataset(cfg, ctx.dataset, RunRecord(run_dir))


def time_reference_solver(cfg: UpsConfig, truth: np.ndarray) -> float:
    """Wall seconds of the reference solver (fine grid, the dataset's settings) on the same
    initial states, spectrally interpolated to the fine grid."""
    data = cfg.data
    u0 = interpolate(truth[:, 0], data.fine_points)
    t = np.linspace(0.0, data.t_final, data.frames)
    begin = time.perf_counter()
    for chunk in np.array_split(u0, max(1, -(-len(u0) // data.solver_chunk))):
        solve_burgers(chunk, data.eps, t, data.solver_dt_max, cfl=data.solver_cfl)
    return time.perf_counter() - begin


def _ttc_summary(metrics: dict[str, Any], logs) -> dict[str, float | None]:
    """TTC's value against its bounds, and how well each rule's score tracks the true error."""
    out: dict[str, float] = {}
    for name, log in logs.items():
        out |= {f"{name}/{k}": v for k, v in search_summary(log).items()}
    if "ttc" in logs:  # each reward alone, along the path the weighted total chose
        for reward, rho in term_spearman(logs["ttc"]).items():
            out[f"ttc/{REWARD_SPEARMAN}{reward}"] = rho
    if "ttc/nrmse" in metrics:
        base = metrics["corrected/nrmse"]
        out["ttc/improvement_pct"] = ttc_improvement(base, metrics["ttc/nrmse"])
        out["random/improvement_pct"] = ttc_improvement(base, metrics["random/nrmse"])
        out["oracle/improvement_pct"] = ttc_improvement(base, metrics["oracle/nrmse"])
        for rule in ("ttc", "oracle"):  # does the candidate set hold states the operator lacks?
            out[f"{rule}/gain_over_operator_pct"] = ttc_improvement(
                metrics["operator/nrmse"], metrics[f"{rule}/nrmse"]
            )
        span = metrics["random/nrmse"] - metrics["oracle/nrmse"]
        gain = metrics["random/nrmse"] - metrics["ttc/nrmse"]
        # 0 = no better than a random pick, 1 = as good as the oracle.
        out["ttc/position_random_to_oracle"] = gain / span if span > 0 else None
    return out


def _write_outputs(out: Path, cfg, metrics, preds, truth, logs) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / "config.yaml", to_yaml(cfg))
    atomic.write_json(out / "metrics.json", {**metrics, "config_hash": config_hash(cfg)})
    curves = {name: nrmse_per_step(p, truth[:, 1:]) for name, p in preds.items()}
    atomic.write_npz(out / PER_TRAJECTORY_FILE, per_trajectory_metrics(preds, truth))
    ttc_steps = search_summary(logs["ttc"], per_step=True) if "ttc" in logs else ()
    reward_steps = term_spearman(logs["ttc"], per_step=True) if "ttc" in logs else {}
    report = markdown_report(cfg, metrics, curves, ttc_steps, reward_steps)
    atomic.write_text(out / "report.md", report)
    plot_error_curves(out / "nrmse_vs_step.png", curves, dt=cfg.data.dt)
    for b in range(min(cfg.eval.plot_trajectories, len(truth))):
        plot_spacetime(out / f"trajectory_{b}.png", truth[b], {n: p[b] for n, p in preds.items()})
    if logs:
        arrays = {
            f"{name}/{key}": value
            for name, batches in logs.items()
            for key, value in stack_logs(batches).items()
        }
        atomic.write_npz(out / "ttc_log.npz", arrays)


def per_trajectory_metrics(preds: dict[str, np.ndarray], truth: np.ndarray) -> dict:
    """``<mode>/nrmse`` and ``<mode>/conservation_gap`` (B,) of predictions (B, S, X) against
    ``truth`` (B, S+1, X): the per-trajectory terms whose means the metric suite reports."""
    out = {}
    for name, p in preds.items():
        out[f"{name}/nrmse"] = nrmse_per_trajectory_step(p, truth[:, 1:]).mean(axis=1)
        out[f"{name}/conservation_gap"] = conservation_gap_per_trajectory(p, truth[:, 0])
    return out


def _mirror(cfg, record, metrics, logs) -> None:
    mirror = WandbMirror(cfg, record, job=f"eval-{cfg.eval.split}")
    # One row per step holding every rule (W&B steps only increase); the keys are their own
    # because a logged row also sets the summary, which must keep the final means.
    per_step = {name: search_summary(log, per_step=True) for name, log in logs.items()}
    for step in range(max((len(rows) for rows in per_step.values()), default=0)):
        row = {
            f"{name}_per_step/{k}": v
            for name, rows in per_step.items()
            for k, v in rows[step].items()
        }
        mirror.log(row, step=step)
    mirror.summary({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    mirror.finish()
