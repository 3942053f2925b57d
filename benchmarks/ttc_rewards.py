"""What each TTC reward buys, alone and together, on one trained run (val split by default).

``python benchmarks/ttc_rewards.py RUN [--split val] [--candidates 8] [--noise-scale 1.0]``
evaluates a private copy of RUN once per reward setting (each reward alone, the default
analytical mix, the mix plus the solver step) with TTC on, and prints per setting: TTC's nRMSE
against the operator's and the corrected mode's, the random and oracle bounds over the same
candidates, TTC's position between them, the oracle's gain over the operator (do the candidates
hold better states?), the score-error Spearman over steps 1, 2, 4, 8, 16 and the last, and
ms per trajectory. Choose settings on val, never on test. Results: docs/results.md ("TTC").
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ups.eval.evaluate import evaluate
from ups.eval.ttc_stats import spearman_rows
from ups.schema import RewardWeights

ANALYTICAL = {"energy": 1.0, "tv": 1.0, "max_principle": 1.0, "pde_residual": 1.0}
STEPS = (1, 2, 4, 8, 16)


def settings() -> dict[str, dict[str, float]]:
    """Reward weights per setting: every reward alone, the analytical mix, the mix + solver."""
    alone = {name: {name: 1.0} for name in vars(RewardWeights())}
    return {
        **alone,
        "analytical": ANALYTICAL,
        "analytical+solver_step": ANALYTICAL | {"solver_step": 1.0},
    }


def overrides_for(weights: dict[str, float], args: argparse.Namespace) -> list[str]:
    every = {name: weights.get(name, 0.0) for name in vars(RewardWeights())}
    return [
        f"eval.split={args.split}",
        "ttc.enabled=true",
        f"ttc.candidates={args.candidates}",
        f"ttc.noise_scale={args.noise_scale}",
        "eval.solver_reference=false",
        "eval.plot_trajectories=0",
        "tracking.wandb.mode=disabled",
        *(f"ttc.weights.{k}={v}" for k, v in every.items()),
    ]


def per_step_spearman(out: Path) -> list[float]:
    """TTC's score-error Spearman, mean over trajectories, per step (1-based list index - 1)."""
    with np.load(out / "ttc_log.npz") as log:
        scores, errors = log["ttc/scores"], log["ttc/errors"]  # (B, S, N)
    rho = np.stack([spearman_rows(scores[:, s], -errors[:, s]) for s in range(scores.shape[1])])
    return [float(np.mean(r[np.isfinite(r)])) if np.isfinite(r).any() else np.nan for r in rho]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run")
    parser.add_argument("--split", default="val")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--noise-scale", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(args.run, run, ignore=shutil.ignore_patterns("eval", "wandb", ".lock"))
        steps = ", ".join(f"rho@{s}" for s in STEPS)
        print(
            f"| rewards | ttc | operator | corrected | random | oracle | position | "
            f"oracle gain % | {steps}, last | ms/traj |"
        )
        print("|---" * 10 + "|")
        for name, weights in settings().items():
            m = evaluate(run, overrides_for(weights, args), progress=False)
            rho = per_step_spearman(run / "eval" / args.split)
            picked = ", ".join(f"{rho[s - 1]:.2f}" for s in STEPS if s <= len(rho))
            position = m["ttc/position_random_to_oracle"]
            print(
                f"| {name} | {m['ttc/nrmse']:.4f} | {m['operator/nrmse']:.4f} | "
                f"{m['corrected/nrmse']:.4f} | {m['random/nrmse']:.4f} | {m['oracle/nrmse']:.4f} | "
                f"{'n/a' if position is None else f'{position:.2f}'} | "
                f"{m['oracle/gain_over_operator_pct']:.1f} | {picked}, {rho[-1]:.2f} | "
                f"{1e3 * m['ttc/seconds_per_trajectory']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
