"""What the two corrector stages share: the operator's residuals and the corrected val score.

The corrector models ``r = z_{t+1} - op(z_t)`` given ``zhat = op(z_t)``, with ``z`` the frozen
autoencoder's latents of consecutive stored frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ups.rollout import Corrector
from ups.stages.autoencoder import load_autoencoder
from ups.stages.context import StageContext, index_batches
from ups.stages.operator import load_operator

OPERATOR_CHUNK = 4096  # latent frames per operator call when precomputing residuals


@dataclass(frozen=True)
class ResidualPairs:
    """``zhat`` and ``r``, each (M, tokens, D): one row per consecutive frame pair."""

    zhat: torch.Tensor
    r: torch.Tensor

    def __len__(self) -> int:
        return len(self.r)

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[tuple]:
        for index in index_batches(len(self), batch_size, generator):
            yield self.zhat[index], self.r[index]


@torch.no_grad()
def residual_pairs(
    ctx: StageContext, autoencoder: nn.Module, operator: nn.Module, u: torch.Tensor
) -> ResidualPairs:
    """Residuals of the operator's one-step predictions on trajectories ``u`` (N, T, X)."""
    z = ctx.encode(autoencoder, u)
    before, after = z[:, :-1].flatten(0, 1), z[:, 1:].flatten(0, 1)
    zhat = torch.cat([operator(c, ctx.cond(len(c))) for c in before.split(OPERATOR_CHUNK)])
    return ResidualPairs(zhat=zhat, r=after - zhat)


def load_residual_data(
    ctx: StageContext,
) -> tuple[nn.Module, nn.Module, ResidualPairs, ResidualPairs]:
    """The frozen autoencoder and operator, and the train and val residual pairs."""
    autoencoder, operator = load_autoencoder(ctx), load_operator(ctx)
    train = residual_pairs(ctx, autoencoder, operator, ctx.train)
    return autoencoder, operator, train, residual_pairs(ctx, autoencoder, operator, ctx.val)


def corrected_val_metrics(
    ctx: StageContext,
    autoencoder: nn.Module,
    operator: nn.Module,
    corrector: Corrector,
    gap_weight: float,
) -> dict[str, float]:
    """Val rollout with the corrector; score = nRMSE + gap_weight * conservation gap / 100."""
    metrics = ctx.val_rollout(autoencoder, operator, corrector)
    score = metrics["rollout_nrmse"] + gap_weight * metrics["conservation_gap"] / 100
    return {**metrics, "score": score}
