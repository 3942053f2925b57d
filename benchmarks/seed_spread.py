"""A headline's spread between seeds, split into the recipe's shift and per-trajectory noise.

``python benchmarks/seed_spread.py RUN RUN [RUN ...] [--split test] [--modes corrected operator]
[--at 256 1024] [--worst 2] [--decayed 0.01]`` reads each run's evaluated per-trajectory nRMSE
(``RUN/eval/SPLIT/per_trajectory.npz``; one run per seed, all on the same split) and prints, per
mode, the seed means' CV with its two parts (:mod:`ups.analysis.seed_spread`) and the CV the same
recipe is expected to show with other numbers of test trajectories; then each run's ``--worst``
trajectories of the first mode (index, nRMSE). With ``--decayed R``, per mode, what the
trajectories whose true field ends below R times its initial rms do to the spread
(:func:`ups.analysis.seed_spread.subset_spread`; the split is read from the first run's data).
Nothing is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ups.analysis.seed_spread import decay_ratio, decompose, predicted_cv_pct, subset_spread
from ups.config import load_config
from ups.data.dataset import get_dataset


def mode_errors(runs: list[Path], split: str, mode: str) -> np.ndarray:
    """(runs, trajectories) nRMSE of ``mode`` on ``split``."""
    rows = []
    for run in runs:
        file = run / "eval" / split / "per_trajectory.npz"
        if not file.is_file():
            raise SystemExit(f"{file} is missing: run `ups eval {run} eval.split={split}` first")
        with np.load(file, allow_pickle=False) as arrays:
            key = f"{mode}/nrmse"
            if key not in arrays.files:
                raise SystemExit(f"{file} has no {key!r}; it holds {sorted(arrays.files)}")
            rows.append(arrays[key])
    if len({len(r) for r in rows}) != 1:
        raise SystemExit(f"the runs' {split} splits differ in size: {[len(r) for r in rows]}")
    return np.stack(rows)


def decayed(run: Path, split: str, below: float) -> np.ndarray:
    """(trajectories,) mask: ``split``'s true fields ending below ``below`` x their start rms."""
    cfg = load_config(run / "config.yaml", [])
    return (
        decay_ratio(get_dataset(cfg.data, cfg.paths.data_cache, progress=False).split(split))
        < below
    )


def print_decayed(by_mode: dict[str, np.ndarray], subset: np.ndarray, below: float) -> None:
    print(
        f"\n{int(subset.sum())} of {len(subset)} trajectories end below {below:g} x their"
        " start rms:"
    )
    print(
        "| mode | share of the noise variance | mean on them | mean on the rest | CV % |"
        " CV % without them |"
    )
    print("|---|---|---|---|---|---|")
    for mode, errors in by_mode.items():
        p = subset_spread(errors, subset)
        print(
            f"| {mode} | {p['noise_share']:.2f} | {p['mean_in']:.4f} | {p['mean_out']:.4f} | "
            f"{p['cv_pct']:.2f} | {p['cv_without_pct']:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--split", default="test", choices=("val", "test"))
    parser.add_argument("--modes", nargs="+", default=["corrected", "operator", "projection"])
    parser.add_argument("--at", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--worst", type=int, default=2, help="worst trajectories shown per run")
    parser.add_argument(
        "--decayed", type=float, help="also split off the fields that end below this x start rms"
    )
    args = parser.parse_args()
    if len(args.runs) < 2:
        parser.error("give at least two runs (one per seed)")
    print(
        "| mode | B | mean | CV % | noise CV % | shift CV % | "
        + " | ".join(f"expected CV % at B = {b}" for b in args.at)
        + " |"
    )
    print("|---" * (6 + len(args.at)) + "|")
    by_mode = {mode: mode_errors(args.runs, args.split, mode) for mode in args.modes}
    for mode, errors in by_mode.items():
        parts = decompose(errors)
        expected = [predicted_cv_pct(parts, b, errors.shape[1]) for b in args.at]
        print(
            f"| {mode} | {errors.shape[1]} | {parts['grand_mean']:.4f} | {parts['cv_pct']:.2f} | "
            f"{parts['noise_cv_pct']:.2f} | {parts['shift_cv_pct']:+.2f} | "
            + " | ".join(f"{e:.2f}" for e in expected)
            + " |"
        )
    for run, row in zip(args.runs, by_mode[args.modes[0]], strict=True):
        worst = np.argsort(row)[::-1][: args.worst]
        print(f"{run}: worst {args.modes[0]}", ", ".join(f"#{i} {row[i]:.3f}" for i in worst))
    if args.decayed is not None:
        print_decayed(by_mode, decayed(args.runs[0], args.split, args.decayed), args.decayed)


if __name__ == "__main__":
    main()
