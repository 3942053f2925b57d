"""The gate's regression rule against injected regressions, on real per-trajectory errors.

``python benchmarks/gate_power.py RUNS [RUNS ...] [--seeds 0 1 2 3 4 5] [--mode corrected]``:
the folders RUNS hold ``seed<N>`` runs evaluated on test, each seed in one of them. Every split
of the seeds into a baseline of 3 and a disjoint judged set of 3 stands for another environment
(other bits, the same recipe); a regression is injected by multiplying every judged trajectory's
nRMSE by (1 + r). Prints how many splits the rule catches. Results: docs/results.md ("The gate's
power").
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from ups.gate import regression_limit
from ups.golden import DEFAULT_TOLERANCE

REGRESSIONS = (0.0, 0.02, 0.05, 0.08, 0.10, 0.15, 0.20)


def per_trajectory(runs: list[str], seed: int, mode: str) -> np.ndarray:
    (run,) = [Path(r) / f"seed{seed}" for r in runs if (Path(r) / f"seed{seed}").is_dir()]
    with np.load(run / "eval" / "test" / "per_trajectory.npz") as arrays:
        return arrays[f"{mode}/nrmse"] if f"{mode}/nrmse" in arrays.files else arrays[mode]


def side(x: dict[int, np.ndarray], seeds, factor: float = 1.0):
    values = np.array([x[s] * factor for s in seeds])  # (S, B)
    return values.mean(axis=1), values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(6)))
    parser.add_argument("--mode", default="corrected")
    args = parser.parse_args()
    x = {s: per_trajectory(args.runs, s, args.mode) for s in args.seeds}
    alpha, cv = DEFAULT_TOLERANCE["alpha"], DEFAULT_TOLERANCE["seed_cv_pct"]["nrmse"] / 100
    splits = [
        (base, judged)
        for base in itertools.combinations(args.seeds, 3)
        for judged in itertools.combinations([s for s in args.seeds if s not in base], 3)
    ]
    for r in REGRESSIONS:
        caught = 0
        for base, judged in splits:
            new = side(x, judged, 1 + r)
            caught += float(new[0].mean()) > regression_limit(new, side(x, base), alpha, cv)
        print(f"+{100 * r:.0f}%: caught {caught} / {len(splits)}")


if __name__ == "__main__":
    main()
