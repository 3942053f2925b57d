"""The gate's regression rule against injected regressions, on real per-trajectory errors.

``python benchmarks/gate_power.py RUNS [--mode corrected]``: RUNS holds ``seed0`` .. ``seed5``
evaluated on test. Every ordered split of the 6 seeds into a baseline of 3 and a judged set of 3
stands for another environment (other bits, the same recipe); a regression is injected by
multiplying every judged trajectory's nRMSE by (1 + r). Prints how many splits the rule catches.
Results: docs/results.md ("The gate's power").
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from ups.gate import regression_limit
from ups.golden import DEFAULT_TOLERANCE

REGRESSIONS = (0.0, 0.02, 0.05, 0.08, 0.10, 0.15, 0.20)


def per_trajectory(runs: str, seed: int, mode: str) -> np.ndarray:
    with np.load(f"{runs}/seed{seed}/eval/test/per_trajectory.npz") as arrays:
        return arrays[f"{mode}/nrmse"] if f"{mode}/nrmse" in arrays.files else arrays[mode]


def side(x: dict[int, np.ndarray], seeds, factor: float = 1.0):
    values = np.array([x[s] * factor for s in seeds])  # (S, B)
    return values.mean(axis=1), values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs")
    parser.add_argument("--mode", default="corrected")
    args = parser.parse_args()
    x = {s: per_trajectory(args.runs, s, args.mode) for s in range(6)}
    alpha, cv = DEFAULT_TOLERANCE["alpha"], DEFAULT_TOLERANCE["seed_cv_pct"]["nrmse"] / 100
    splits = [
        (base, tuple(s for s in range(6) if s not in base))
        for base in itertools.combinations(range(6), 3)
    ]
    for r in REGRESSIONS:
        caught = 0
        for base, judged in splits:
            new = side(x, judged, 1 + r)
            caught += float(new[0].mean()) > regression_limit(new, side(x, base), alpha, cv)
        print(f"+{100 * r:.0f}%: caught {caught} / {len(splits)}")


if __name__ == "__main__":
    main()
