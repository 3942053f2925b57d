"""How an operator ensemble's spread between runs falls with its member count, from finished runs.

``python benchmarks/pooled_members.py RUN [RUN ...] [--split val] [--sizes 1 2 3 4 6]
[--draws 40] [--out F.npz]``
pools the operator members of the RUNs (one run per seed, ``operator.members`` >= 1 each; every
member is an independent draw of the recipe: its own initialisation, windows and symmetries) and
rolls out ensembles of M of them drawn from the pool. Each member steps in its own run's latent
space from the ensemble's physical state, and the ensemble's next state is the mean of the
members' decoded steps (for members of one run, whose decoder is the same and linear, this is
the run's own latent mean). Per M it prints the mean nRMSE of ``--draws`` random M-member
ensembles and their CV, with the CV scaled up by the finite pool's correction
``sqrt((N - 1) / (N - M))`` for ensembles drawn from N members; with ``--sizes`` including 2 it
also checks each run's own pair against the run's mean ensemble. Nothing is written into a RUN.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from symmetry_views import batched_rollouts, load_run

from ups.eval.surrogate import Surrogate
from ups.metrics import nrmse_per_trajectory_step
from ups.models.ensemble import MeanEnsemble

Member = tuple[Surrogate, torch.nn.Module]


def members_of(s: Surrogate) -> list[Member]:
    """The run's operator members (the operator itself when it has one), with its surrogate."""
    ops = s.operator.members if isinstance(s.operator, MeanEnsemble) else [s.operator]
    return [(s, op) for op in ops]


@torch.no_grad()
def pooled_rollout(members: list[Member], u0: np.ndarray, steps: int) -> np.ndarray:
    """(B, X) physical start -> (B, steps, X): each step the mean of the members' decoded steps."""
    u, frames = u0, []
    for _ in range(steps):
        outs = []
        for s, op in members:
            z = s.autoencoder.encode(s.ctx.to_model(u))
            outs.append(s.ctx.physical(s.autoencoder.decode(op(z, s.ctx.cond(len(z))))))
        u = np.mean(outs, axis=0)
        frames.append(u)
    return np.stack(frames, axis=1)


def score(members: list[Member], truth: np.ndarray, batch: int) -> np.ndarray:
    """Per-trajectory nRMSE (B,) of the pooled ensemble's rollouts of ``truth`` (B, T, X)."""
    pred = batched_rollouts(
        lambda u0: pooled_rollout(members, u0, truth.shape[1] - 1), truth, batch
    )
    return nrmse_per_trajectory_step(pred, truth[:, 1:]).mean(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 3, 4, 6])
    parser.add_argument("--draws", type=int, default=40, help="random ensembles per size")
    parser.add_argument("--seed", type=int, default=0, help="of the draws")
    parser.add_argument("--out", type=Path, default=None, help="per-trajectory nRMSE (.npz)")
    args = parser.parse_args()
    loaded = [load_run(run) for run in args.runs]
    truth = loaded[0][1].split(args.split)
    batch = loaded[0][0].eval.batch_size
    pool = [m for _, _, s in loaded for m in members_of(s)]
    if 2 in args.sizes:
        for run, (_, _, s) in zip(args.runs, loaded, strict=True):
            own = score(members_of(s), truth, batch).mean()
            print(f"{run}: its own members pooled {own:.5f}", flush=True)
    rng, kept = np.random.default_rng(args.seed), {}
    print(f"pool of {len(pool)} members, split {args.split} ({len(truth)} trajectories)")
    print("| M | draws | mean nRMSE | CV % across draws | CV % pool-corrected |")
    print("|---|---|---|---|---|")
    for m in args.sizes:
        picks = [rng.choice(len(pool), size=m, replace=False) for _ in range(args.draws)]
        errors = np.array([score([pool[i] for i in pick], truth, batch) for pick in picks])
        means = errors.mean(axis=1)
        cv = 100 * means.std(ddof=1) / means.mean()
        corrected = cv * np.sqrt((len(pool) - 1) / (len(pool) - m)) if m < len(pool) else np.nan
        row = f"| {m} | {args.draws} | {means.mean():.5f} | {cv:.2f} | {corrected:.2f} |"
        print(row, flush=True)
        kept[f"M{m}"], kept[f"M{m}_picks"] = errors, np.array(picks)
    if args.out:
        np.savez(args.out, **kept)


if __name__ == "__main__":
    main()
