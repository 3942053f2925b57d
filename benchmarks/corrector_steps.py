"""What the corrector does to one step from a true state: does its correction point at the
operator's residual, and by how much does it change the one-step error?

``python benchmarks/corrector_steps.py RUN [RUN ...] [--split val] [--temperature T]``
takes every consecutive stored frame pair ``(u_t, u_{t+1})`` of the split (teacher forcing: no
rollout drift), steps the run's operator from ``u_t`` (``zhat``), draws the corrector's
correction ``c`` at temperature T (the run's by default) and compares it with the true residual
``r = z_{t+1} - zhat`` in latent space (``z`` = the run's autoencoder's latents). Per run it
prints:

- one-step nRMSE (physical, per frame pair, then averaged) of the operator and of the corrected
  step, and the share of pairs the correction improves;
- ``cos``: the mean cosine between ``c`` and ``r`` (0 = the correction is unrelated to the
  error it should remove);
- ``best scale``: ``<c, r> / <c, c>`` over all pairs, the multiple of ``c`` that would remove the
  most squared error (1 = the right size, below 1 = it over-corrects);
- ``|c| / |r|``: the correction's size against the residual's.

Nothing is written into RUN. Choose settings from the val split only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmarks.symmetry_views import load_run
from ups.metrics import nrmse_per_trajectory_step
from ups.stages.residuals import residual_pairs


@torch.no_grad()
def one_step(run: Path, split: str, temperature: float | None, data_cache: str | None) -> dict:
    """The numbers above for one run (floats)."""
    cfg, dataset, s = load_run(run, data_cache)
    temperature = cfg.corrected_temperature if temperature is None else temperature
    truth = dataset.split(split)  # (N, T, X) physical
    pairs = residual_pairs(s.ctx, s.autoencoder, s.operator, s.ctx.to_model(truth))
    zhat, cond = pairs.zhat, s.ctx.cond(len(pairs))
    correct = s.corrector(s.ctx.generator("eval/corrected"), temperature)
    correction = correct(zhat, cond, pairs.z)
    c, r = correction.flatten(1), pairs.r.flatten(1)
    cosine = torch.nn.functional.cosine_similarity(c, r, dim=1)
    true_next = truth[:, 1:].reshape(len(pairs), 1, -1)

    def step_error(latent: torch.Tensor) -> np.ndarray:
        pred = s.ctx.physical(s.autoencoder.decode(latent))[:, None]
        return nrmse_per_trajectory_step(pred, true_next)[:, 0]

    operator_error, corrected_error = step_error(zhat), step_error(zhat + correction)
    return {
        "temperature": temperature,
        "operator": float(operator_error.mean()),
        "corrected": float(corrected_error.mean()),
        "improved": float((corrected_error < operator_error).mean()),
        "cos": float(cosine.mean()),
        "best_scale": float((c * r).sum() / (c * c).sum()),
        "size": float(c.norm(dim=1).mean() / r.norm(dim=1).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--data-cache", default=None, help="override paths.data_cache")
    args = parser.parse_args()
    print(f"split {args.split}, teacher-forced one-step errors")
    print(
        "| run | T | operator | corrected | improved | cos | best scale | abs c / abs r |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for run in args.runs:
        m = one_step(run, args.split, args.temperature, args.data_cache)
        print(
            f"| {run} | {m['temperature']:g} | {m['operator']:.4f} | {m['corrected']:.4f} | "
            f"{m['improved']:.0%} | {m['cos']:.3f} | {m['best_scale']:.3f} | {m['size']:.2f} |"
        )


if __name__ == "__main__":
    main()
