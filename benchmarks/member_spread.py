"""Where an ensemble recipe's seed spread lives: in its members, or in what they share.

``python benchmarks/member_spread.py RUN [RUN ...] [--split val] [--out F.npz]``
rolls out each run's ``split`` (val by default) with every operator member alone and with the
run's mean ensemble, and prints per run the members' and the ensemble's nRMSE. Across runs
(one per seed) it then splits the members' nRMSE into a one-way random-effects model: members
of one run differ only by their own initialisation and windows, while the autoencoder, data
and normaliser are shared, so

    var(run mean of M members) = shared + within / M,

and ``shared`` (the between-run variance the members do not average away, floored at 0) is the
part more members cannot cancel. Nothing is written into a RUN.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from symmetry_views import load_run, score

from ups.models.ensemble import MeanEnsemble


def member_errors(run: Path, split: str) -> dict[str, np.ndarray]:
    """'member m' and 'ensemble' -> per-trajectory nRMSE (B,) of one run's ``split``."""
    cfg, dataset, s = load_run(run)
    if not isinstance(s.operator, MeanEnsemble):
        raise SystemExit(f"{run}: operator.members is 1; there are no members to compare")
    truth = dataset.split(split)
    steps = {f"member {m}": op for m, op in enumerate(s.operator.members)}
    steps["ensemble"] = s.operator
    return {
        name: score(s, step, None, truth, cfg.eval.batch_size)[0] for name, step in steps.items()
    }


def decompose(member_means: np.ndarray) -> dict[str, float]:
    """(runs, M) member nRMSE means -> the random-effects split of their spread."""
    runs, m = member_means.shape
    within = float(member_means.var(axis=1, ddof=1).mean())
    between = float(member_means.mean(axis=1).var(ddof=1))
    shared = max(0.0, between - within / m)
    grand = float(member_means.mean())
    return {
        "grand mean": grand,
        "member CV % (within a run)": 100 * within**0.5 / grand,
        "run-mean CV % (between runs)": 100 * between**0.5 / grand,
        "shared CV % (not cancelled by members)": 100 * shared**0.5 / grand,
        "run-mean CV % expected without a shared part": 100 * (within / m) ** 0.5 / grand,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--out", type=Path, default=None, help="per-trajectory nRMSE (.npz)")
    args = parser.parse_args()
    kept, means, ensembles = {}, [], []
    for run in args.runs:
        errors = member_errors(run, args.split)
        kept.update({f"{run.name}/{k}": v for k, v in errors.items()})
        row = {k: float(v.mean()) for k, v in errors.items()}
        print(run, " ".join(f"{k} {v:.4f}" for k, v in row.items()), flush=True)
        ensembles.append(row.pop("ensemble"))
        means.append(list(row.values()))
    ens = np.array(ensembles)
    print(f"ensemble: mean {ens.mean():.4f}, CV {100 * ens.std(ddof=1) / ens.mean():.1f}%")
    if len(means) > 1:
        for key, value in decompose(np.array(means)).items():
            print(f"{key}: {value:.4f}" if key == "grand mean" else f"{key}: {value:.1f}")
    if args.out:
        np.savez(args.out, **kept)


if __name__ == "__main__":
    main()
