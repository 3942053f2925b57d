"""What symmetry views (``eval.views``) buy on one trained run: nRMSE and cost per view count.

``python benchmarks/symmetry_views.py RUN [--split val] [--views 1 2 4 8 16] [--step-views 2 4]
[--temperature T] [--out F.npz]``
rolls out the run's ``split`` (val by default: choose settings there, never on test) with the
operator averaged over V views (``ups/eval/views.py``), alone and with one corrector sample per
step (what ``eval.views`` does), and, as a comparison, with the whole corrected step (operator
plus sample) averaged over the views, V samples a step. Prints mean and median per-trajectory
nRMSE, conservation gap and ms per trajectory per variant; ``--out`` keeps every variant's
per-trajectory nRMSE (B,) for cross-seed analysis. Nothing is written into RUN.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ups.config import load_config
from ups.data.dataset import BurgersDataset, get_dataset
from ups.eval.surrogate import Surrogate
from ups.eval.views import SymmetryViews
from ups.metrics import conservation_gap, nrmse_per_trajectory_step
from ups.records import RunRecord, require_finished_run
from ups.repro import seed_everything
from ups.rollout import rollout
from ups.schema import UpsConfig
from ups.stages.context import StageContext


class CorrectedStep(nn.Module):
    """The corrected mode's step as one module: ``zhat + corrector(zhat, cond, z)``,
    ``zhat = op(z)``."""

    def __init__(self, operator: nn.Module, corrector):
        super().__init__()
        self.operator, self.corrector = operator, corrector

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        zhat = self.operator(z, cond)
        return zhat + self.corrector(zhat, cond, z)


def variants(s: Surrogate, views: int, temperature: float, whole_step: bool) -> dict[str, tuple]:
    """name -> (step module, corrector or None) for one view count."""
    ae, norm, op = s.autoencoder, s.ctx.normalizer, s.operator
    viewed = SymmetryViews(op, ae, norm, views) if views > 1 else op
    fresh = lambda: s.corrector(s.ctx.generator("eval/corrected"), temperature)  # noqa: E731
    out = {
        f"operator v{views}": (viewed, None),
        f"corrected v{views}": (viewed, fresh()),
    }
    if views > 1 and whole_step:
        step = SymmetryViews(CorrectedStep(op, fresh()), ae, norm, views)
        out[f"corrected-step v{views}"] = (step, None)
    return out


def batched_rollouts(roll, truth: np.ndarray, batch: int) -> np.ndarray:
    """``roll(u0 (b, X)) -> (b, T-1, X)`` (physical units) from each first frame of ``truth``
    (B, T, X), ``batch`` trajectories at a time: the predictions (B, T-1, X)."""
    return np.concatenate([roll(truth[i : i + batch, 0]) for i in range(0, len(truth), batch)])


def score(
    s: Surrogate, step, corrector, truth: np.ndarray, batch: int
) -> tuple[np.ndarray, float, float]:
    """Per-trajectory nRMSE (B,), conservation gap %, seconds per trajectory."""

    def roll(u0: np.ndarray) -> np.ndarray:
        u0 = s.ctx.to_model(u0)
        steps = truth.shape[1] - 1
        return s.ctx.physical(
            rollout(s.autoencoder, step, u0, s.ctx.cond(len(u0)), steps, corrector)
        )

    start = time.perf_counter()
    pred = batched_rollouts(roll, truth, batch)
    seconds = (time.perf_counter() - start) / len(truth)
    per_traj = nrmse_per_trajectory_step(pred, truth[:, 1:]).mean(axis=1)
    return per_traj, float(conservation_gap(pred, truth[:, 0])), seconds


def load_run(
    run: Path, data_cache: str | None = None
) -> tuple[UpsConfig, BurgersDataset, Surrogate]:
    """A finished run's config, dataset and frozen models, seeded as the run was."""
    require_finished_run(run)
    overrides = [f"paths.data_cache={data_cache}"] if data_cache else []
    cfg = load_config(run / "config.yaml", overrides)
    seed_everything(cfg.seed, cfg.deterministic, cfg.threads)
    dataset = get_dataset(cfg.data, cfg.paths.data_cache, progress=False)
    ctx = StageContext.from_dataset(cfg, dataset, RunRecord(run))
    return cfg, dataset, Surrogate.load(ctx, cfg.eval.corrector)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--views", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument(
        "--step-views",
        type=int,
        nargs="*",
        default=[2, 4],
        help="view counts of the whole-step variant (V corrector samples a step)",
    )
    parser.add_argument(
        "--temperature", type=float, default=None, help="the corrector's (default: the run's)"
    )
    parser.add_argument("--data-cache", default=None, help="override paths.data_cache")
    parser.add_argument("--out", type=Path, default=None, help="per-trajectory nRMSE (.npz)")
    args = parser.parse_args()

    cfg, dataset, s = load_run(args.run, args.data_cache)
    truth = dataset.split(args.split)
    temperature = cfg.corrected_temperature if args.temperature is None else args.temperature
    print(f"{args.run} split {args.split} ({len(truth)} trajectories), temperature {temperature}")
    print("| variant | nRMSE | median | cons. gap % | ms/traj |\n|---|---|---|---|---|")
    kept = {}
    for views in args.views:
        for name, (step, corrector) in variants(
            s, views, temperature, views in args.step_views
        ).items():
            per_traj, gap, seconds = score(s, step, corrector, truth, cfg.eval.batch_size)
            kept[name] = per_traj
            print(
                f"| {name} | {per_traj.mean():.4f} | {np.median(per_traj):.4f} | {gap:.3f} | "
                f"{1e3 * seconds:.1f} |",
                flush=True,
            )
    if args.out:
        np.savez(args.out, **kept)


if __name__ == "__main__":
    main()
