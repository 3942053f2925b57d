"""Performance benchmark of a trained run against the reference solver (``nox -s bench``).

Never part of the test suite. Measures, on this machine:

- data generation: the config's dataset built from scratch in a temporary cache;
- training: seconds per stage and per epoch, read from the run's records (``metrics.json``
  ``wall_seconds``, ``history.jsonl`` ``epoch_seconds``), i.e. measured while it trained;
- every time below is the least of ``--repeats`` runs (default 3), so other jobs on the machine
  disturb it as little as possible;
- rollout throughput (trajectories/s) of each mode on the first N test trajectories, beside the
  reference solver (fine grid, the dataset's settings) on the same initial states;
- TTC cost per trajectory for candidates K x lookahead H;
- peak memory (RSS of this process; on CUDA, peak allocated tensor memory per phase);
- equal accuracy: the reference solver on coarser grids and steps, each setting's nRMSE
  against the stored test truth and its time; per surrogate mode, the cheapest setting at least
  as accurate, timed on the same trajectories.

Writes ``benchmarks/results/<name>.json`` and ``.md``. Usage::

    python benchmarks/bench.py --run RUN [--config configs/burgers_golden.yaml] [key=value ...]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ups import atomic
from ups.config import load_config
from ups.data.dataset import get_dataset
from ups.eval import modes as mode_fns
from ups.eval.evaluate import roll_out_all, time_reference_solver
from ups.eval.surrogate import Surrogate
from ups.metrics import nrmse
from ups.physics.burgers import downsample, solve_burgers
from ups.physics.spectral import interpolate
from ups.records import RunRecord, read_run
from ups.repro import environment_fingerprint, seed_everything
from ups.stages.context import StageContext

ROLLOUT_MODES = ("persistence", "spectral_coarse", "operator", "corrected", "projection")
SURROGATE_MODES = ("operator", "corrected", "projection", "ttc")
RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    run_cfg = load_config(Path(args.run) / "config.yaml", args.overrides)
    seed_everything(run_cfg.seed, run_cfg.deterministic, run_cfg.threads)
    out: dict[str, Any] = {
        "config": args.config,
        "run": args.run,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": environment_fingerprint(run_cfg.device) | {"threads": run_cfg.threads},
        "settings": vars(args),
    }
    memory = Memory(run_cfg.device)
    if not args.skip_data:
        out["data_generation"] = memory.measure("data generation", lambda: time_data(cfg))
    out["training"] = training_times(args.run)
    dataset = get_dataset(run_cfg.data, run_cfg.paths.data_cache, progress=False)
    truth = dataset.test[: args.trajectories]
    ctx = StageContext.from_dataset(run_cfg, dataset, RunRecord(Path(args.run)))
    surrogate = Surrogate.load(ctx, run_cfg.eval.corrector)
    rollouts = memory.measure(
        "rollouts", lambda: time_rollouts(run_cfg, surrogate, truth, args.repeats)
    )
    out["rollouts"] = rollouts
    ttc_truth = truth[: args.ttc_trajectories]
    out["ttc_cost"] = memory.measure("ttc", lambda: time_ttc(args, surrogate, ttc_truth))
    rollouts["modes"]["ttc"] = _default_ttc(out["ttc_cost"], run_cfg.ttc)
    settings = memory.measure(
        "solver settings",
        lambda: solver_settings(run_cfg, truth, args.solver_points, args.solver_cfl, args.repeats),
    )
    out["solver_settings"] = settings
    out["equal_accuracy"] = equal_accuracy(rollouts["modes"], settings)
    out["peak_memory_mb"] = memory.peaks
    name = args.name or f"{cfg.name}-{time.strftime('%Y%m%d', time.gmtime())}"
    Path(args.out).mkdir(parents=True, exist_ok=True)
    atomic.write_json(Path(args.out) / f"{name}.json", out)
    atomic.write_text(Path(args.out) / f"{name}.md", markdown(out))
    print(markdown(out))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="key=value overrides (config and run)")
    parser.add_argument("--config", default="configs/burgers_golden.yaml")
    parser.add_argument("--run", required=True, help="a trained run of that config")
    parser.add_argument("--trajectories", type=int, default=64, help="test trajectories timed")
    parser.add_argument("--ttc-trajectories", type=int, default=16, help="... for the TTC grid")
    parser.add_argument("--ttc-k", type=int, nargs="+", default=[4, 8, 16], help="candidates K")
    parser.add_argument("--ttc-h", type=int, nargs="+", default=[1, 2], help="lookahead H")
    parser.add_argument("--solver-points", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    parser.add_argument("--solver-cfl", type=float, nargs="+", default=[1.0, 0.5])
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed repeats; the least time counts"
    )
    parser.add_argument("--skip-data", action="store_true", help="do not time data generation")
    parser.add_argument("--name", help="results file name (default <config name>-<date>)")
    parser.add_argument("--out", default=str(RESULTS))
    return parser


class Memory:
    """Peak memory per phase, MB: process RSS high-water mark (CPU) or allocated CUDA memory."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        self.peaks: dict[str, float] = {}

    def measure(self, phase: str, fn):
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        result = fn()
        if self.cuda:
            self.peaks[phase] = torch.cuda.max_memory_allocated() / 2**20
        else:  # ru_maxrss is in KiB on Linux; the process's high-water mark so far
            self.peaks[phase] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return result


def time_data(cfg) -> dict[str, float]:
    """Seconds to generate the config's dataset from scratch (temporary cache)."""
    with tempfile.TemporaryDirectory() as cache:
        begin = time.perf_counter()
        get_dataset(cfg.data, cache, progress=False)
        seconds = time.perf_counter() - begin
    return {"seconds": seconds, "trajectories": cfg.data.n_total}


def training_times(run_dir: str) -> dict[str, dict[str, float]]:
    """Per stage: wall seconds, epochs run, mean and median seconds per epoch (run records)."""
    run = read_run(run_dir)
    out = {}
    for stage in run.config.stages:
        epochs = [r["epoch_seconds"] for r in run.history if r["stage"] == stage]
        if stage in run.metrics and epochs:
            out[stage] = {
                "wall_seconds": run.metrics[stage]["wall_seconds"],
                "epochs": len(epochs),
                "epoch_seconds_mean": float(np.mean(epochs)),
                "epoch_seconds_median": float(np.median(epochs)),
            }
    return out


def _roll_out(cfg, surrogate: Surrogate, names, truth: np.ndarray, repeats: int):
    """Predictions of each mode and its least wall seconds over ``repeats`` identical rollouts
    (fresh seeded generators each time; the least is the one other jobs disturbed least)."""
    runs = []
    for _ in range(repeats):
        env = mode_fns.new_env(cfg, cfg.data.dt, cfg.data.eps, surrogate)
        runs.append(roll_out_all(env, names, truth, cfg.eval.batch_size, False))
    return runs[0][0], {name: min(r[1][name] for r in runs) for name in names}


def time_rollouts(cfg, surrogate: Surrogate, truth: np.ndarray, repeats: int) -> dict[str, Any]:
    """Seconds, trajectories/s and test nRMSE of each mode and of the fine reference solver."""
    _roll_out(cfg, surrogate, ROLLOUT_MODES, truth[:2], 1)  # first-call costs, untimed
    preds, seconds = _roll_out(cfg, surrogate, ROLLOUT_MODES, truth, repeats)
    modes = {m: _timing(seconds[m], len(truth), preds[m], truth) for m in ROLLOUT_MODES}
    reference = min(time_reference_solver(cfg, truth) for _ in range(repeats))
    return {
        "trajectories": len(truth),
        "modes": modes,
        "reference_solver": {"seconds": reference, "traj_per_s": len(truth) / reference},
    }


def _timing(seconds: float, n: int, pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {"seconds": seconds, "traj_per_s": n / seconds, "nrmse": nrmse(pred, truth[:, 1:])}


def time_ttc(args, surrogate: Surrogate, truth: np.ndarray) -> list:
    """TTC seconds per trajectory and nRMSE for each candidates K and lookahead H. The repeats
    go round the whole grid, so a slow spell of another job hits one repeat of many settings
    rather than every repeat of one."""
    grid = [(k, h) for k in args.ttc_k for h in args.ttc_h]
    cfgs = {
        (k, h): load_config(
            Path(args.run) / "config.yaml",
            [*args.overrides, "ttc.enabled=true", f"ttc.candidates={k}", f"ttc.horizon={h}"],
        )
        for k, h in grid
    }
    preds, seconds = {}, {}
    for _ in range(args.repeats):
        for key in grid:
            pred, took = _roll_out(cfgs[key], surrogate, ["ttc"], truth, 1)
            preds[key] = pred["ttc"]
            seconds[key] = min(seconds.get(key, np.inf), took["ttc"])
    return [
        {"K": k, "H": h, **_timing(seconds[k, h], len(truth), preds[k, h], truth)} for k, h in grid
    ]


def _default_ttc(rows: list, ttc) -> dict[str, float] | None:
    """The TTC row at the config's own K and H, if the grid holds it."""
    match = [r for r in rows if r["K"] == ttc.candidates and r["H"] == ttc.horizon]
    return {k: match[0][k] for k in ("seconds", "traj_per_s", "nrmse")} if match else None


def solver_settings(cfg, truth, points_list, cfl_list, repeats) -> list[dict[str, Any]]:
    """The reference solver from the stored initial frames on each grid, CFL and step cap
    (the dataset's, or the frame interval): nRMSE against the stored truth (on the stored
    grid) and seconds, all trajectories in one batch."""
    stored = truth.shape[-1]
    for points in points_list:
        if (points <= stored and stored % points) or (points > stored and points % stored):
            raise ValueError(f"--solver-points {points} must divide or be a multiple of {stored}")
    t = np.arange(truth.shape[1]) * cfg.data.dt
    rows = []
    for points in points_list:
        for cfl in cfl_list:
            for dt_max in sorted({cfg.data.solver_dt_max, cfg.data.dt}):
                times = []
                for _ in range(repeats):
                    begin = time.perf_counter()
                    pred = _solve_on_grid(truth[:, 0], points, stored, cfg.data.eps, t, dt_max, cfl)
                    times.append(time.perf_counter() - begin)
                seconds = min(times)
                rows.append(
                    {
                        "points": points,
                        "cfl": cfl,
                        "dt_max": dt_max,
                        "seconds": seconds,
                        "traj_per_s": len(truth) / seconds,
                        "nrmse": nrmse(pred[:, 1:], truth[:, 1:]),
                    }
                )
    return rows


def _solve_on_grid(u0, points, stored, eps, t, dt_max, cfl) -> np.ndarray:
    """Solve from ``u0`` (B, stored) on ``points`` grid points; frames back on the stored grid
    (cell averages when finer, Fourier interpolation when coarser), (B, T, stored)."""
    if points <= stored:  # the coarse solver starts from cell averages, as the data was made
        frames = solve_burgers(downsample(u0, stored // points), eps, t, dt_max, cfl=cfl)
        return interpolate(frames, stored)
    frames = solve_burgers(interpolate(u0, points), eps, t, dt_max, cfl=cfl)
    return downsample(frames, points // stored)


def equal_accuracy(modes: dict[str, Any], settings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per surrogate mode: the cheapest solver setting whose nRMSE is at most the mode's."""
    rows = []
    for mode in SURROGATE_MODES:
        if modes.get(mode) is None:
            continue
        ok = [s for s in settings if s["nrmse"] <= modes[mode]["nrmse"]]
        best = min(ok, key=lambda s: s["seconds"]) if ok else None
        rows.append(
            {
                "mode": mode,
                "nrmse": modes[mode]["nrmse"],
                "traj_per_s": modes[mode]["traj_per_s"],
                "solver": best,
                "speedup": best["seconds"] / modes[mode]["seconds"] if best else None,
            }
        )
    return rows


def markdown(out: dict[str, Any]) -> str:
    """The benchmark as Markdown tables."""
    m = out["machine"]
    lines = [
        f"# Benchmark: {out['config']} (run `{out['run']}`), {out['date']}",
        "",
        f"Machine: {m['cpu']}, {m['threads']} torch threads, device {m['device']}, "
        f"torch {m['torch']}, python {m['python']}.",
        "",
    ]
    if "data_generation" in out:
        d = out["data_generation"]
        lines += [
            f"Data generation: {d['seconds']:.1f} s for {d['trajectories']} trajectories.",
            "",
        ]
    lines += [
        "| stage | wall s | epochs | s/epoch (mean) | s/epoch (median) |",
        "|---|---|---|---|---|",
    ]
    for stage, t in out["training"].items():
        lines.append(
            f"| {stage} | {t['wall_seconds']:.0f} | {t['epochs']} | "
            f"{t['epoch_seconds_mean']:.1f} | {t['epoch_seconds_median']:.1f} |"
        )
    r = out["rollouts"]
    ref = r["reference_solver"]
    lines += [
        "",
        f"Rollouts on {r['trajectories']} test trajectories (reference solver, fine grid: "
        f"{ref['traj_per_s']:.1f} traj/s):",
        "",
        "| mode | traj/s | ms/traj | test nRMSE | vs reference solver |",
        "|---|---|---|---|---|",
    ]
    for mode, t in r["modes"].items():
        if t is not None:
            lines.append(
                f"| {mode} | {t['traj_per_s']:.1f} | {1e3 / t['traj_per_s']:.1f} | "
                f"{t['nrmse']:.4f} | {t['traj_per_s'] / ref['traj_per_s']:.2f}x |"
            )
    n_ttc = out["settings"]["ttc_trajectories"]
    lines += ["", f"TTC cost ({n_ttc} trajectories):", "", "| K | H | ms/traj | nRMSE |"]
    lines += ["|---|---|---|---|"]
    for t in out["ttc_cost"]:
        lines.append(f"| {t['K']} | {t['H']} | {1e3 / t['traj_per_s']:.0f} | {t['nrmse']:.4f} |")
    lines += _equal_accuracy_lines(out["equal_accuracy"])
    lines += [
        "",
        "Peak memory (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in out["peak_memory_mb"].items()),
    ]
    return "\n".join(lines) + "\n"


def _equal_accuracy_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "Equal accuracy (cheapest reference-solver setting with nRMSE <= the mode's):",
        "",
        "| mode | nRMSE | traj/s | solver points / CFL / dt_max | solver nRMSE | solver traj/s | "
        "solver s / surrogate s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row["solver"]
        cells = (
            f"{s['points']} / {s['cfl']} / {s['dt_max']:.3g} | {s['nrmse']:.4f} | "
            f"{s['traj_per_s']:.0f} | {row['speedup']:.3g}x"
            if s
            else "none | - | - | -"
        )
        lines.append(f"| {row['mode']} | {row['nrmse']:.4f} | {row['traj_per_s']:.1f} | {cells} |")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
