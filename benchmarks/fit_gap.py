"""Is a run's error a lack of fit or of generalisation? The operator on train against test.

``python benchmarks/fit_gap.py RUN [RUN ...] [--decayed 0.01] [--rest 256]``
rolls each run's operator out from frame 0 on the train and test trajectories whose true field
ends below ``--decayed`` x its initial rms (the decaying family of docs/results.md), and on
``--rest`` other trajectories of each split (one seeded draw, the same for every run), and prints
their mean and median per-trajectory nRMSE. Train windows are what the operator was fitted on,
so an error as high on train as on test is under-fitting, not a generalisation gap. Nothing is
written into a RUN.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from symmetry_views import load_run, score

from ups.analysis.seed_spread import decay_ratio
from ups.repro import numpy_rng

SPLITS = ("train", "test")


def fit_gap(run: Path, below: float, rest: int) -> dict[str, np.ndarray]:
    """'<split> family' and '<split> rest' -> per-trajectory operator nRMSE of one run."""
    cfg, dataset, s = load_run(run)
    rng = numpy_rng(cfg.data.seed, "benchmarks/fit_gap")  # the data's seed: every run, one draw
    out = {}
    for split in SPLITS:
        truth = dataset.split(split)
        family = decay_ratio(truth) < below
        pool = np.flatnonzero(~family)
        others = rng.choice(pool, size=min(rest, len(pool)), replace=False)
        for part, rows in (("family", np.flatnonzero(family)), ("rest", np.sort(others))):
            errors, _, _ = score(s, s.operator, None, truth[rows], cfg.eval.batch_size)
            out[f"{split} {part}"] = errors
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--decayed", type=float, default=0.01)
    parser.add_argument("--rest", type=int, default=256, help="other trajectories per split")
    args = parser.parse_args()
    print("| run | part | trajectories | mean nRMSE | median nRMSE |")
    print("|---|---|---|---|---|")
    for run in args.runs:
        for part, errors in fit_gap(run, args.decayed, args.rest).items():
            print(
                f"| {run} | {part} | {len(errors)} | {errors.mean():.4f} |"
                f" {np.median(errors):.4f} |"
            )


if __name__ == "__main__":
    main()
