"""What the two corrector stages share: the operator's residuals, their batches and the corrected
val score.

The corrector models ``r = z_{t+1} - op(z_t)`` given ``zhat = op(z_t)`` (and ``z_t`` with
``previous_state``), with ``z`` the frozen autoencoder's latents of consecutive stored frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ups.models.conservation import conserving, projection_of
from ups.rollout import Corrector
from ups.schema import ConsistencyStageConfig, DiffusionStageConfig
from ups.stages.autoencoder import load_autoencoder
from ups.stages.context import StageContext, index_batches, n_batches
from ups.stages.operator import load_operator

OPERATOR_CHUNK = 4096  # latent frames per operator call when precomputing residuals


@dataclass(frozen=True)
class ResidualPairs:
    """``zhat = op(z)``, ``r`` and the state ``z``, each (M, tokens, D): one row per consecutive
    frame pair."""

    zhat: torch.Tensor
    r: torch.Tensor
    z: torch.Tensor

    def __len__(self) -> int:
        return len(self.r)

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[tuple]:
        for index in index_batches(len(self), batch_size, generator):
            yield self.zhat[index], self.r[index], self.z[index]


@torch.no_grad()
def residual_pairs(
    ctx: StageContext, autoencoder: nn.Module, operator: nn.Module, u: torch.Tensor
) -> ResidualPairs:
    """Residuals of the operator's one-step predictions on trajectories ``u`` (N, T, X)."""
    z = ctx.encode(autoencoder, u)
    before, after = z[:, :-1].flatten(0, 1), z[:, 1:].flatten(0, 1)
    zhat = torch.cat([operator(c, ctx.cond(len(c))) for c in before.split(OPERATOR_CHUNK)])
    return ResidualPairs(zhat=zhat, r=after - zhat, z=before)


def load_residual_data(
    ctx: StageContext,
) -> tuple[nn.Module, nn.Module, ResidualPairs, ResidualPairs]:
    """The frozen autoencoder and operator, and the train and val residual pairs."""
    autoencoder = load_autoencoder(ctx)
    operator = load_operator(ctx, autoencoder)
    train = residual_pairs(ctx, autoencoder, operator, ctx.train)
    return autoencoder, operator, train, residual_pairs(ctx, autoencoder, operator, ctx.val)


class ResidualStage:
    """What both corrector stages do alike: load the frozen autoencoder and operator with the
    train and val residual pairs, and batch the train pairs at the stage's batch size."""

    def __init__(self, ctx: StageContext, section: DiffusionStageConfig | ConsistencyStageConfig):
        self.ctx, self.cfg = ctx, section
        self.train_cfg = section.train
        self.autoencoder, self.operator, self.pairs, self.val_pairs = load_residual_data(ctx)
        self.projection = projection_of(self.operator)

    def steps_per_epoch(self) -> int:
        return n_batches(len(self.pairs), self.train_cfg.batch_size)

    def batches(self, generator: torch.Generator):
        return self.pairs.batches(self.train_cfg.batch_size, generator)

    def corrected_val_metrics(self, corrector: Corrector) -> dict[str, float]:
        """Val rollout with ``corrector``, its corrected states held to their inputs' mass under
        ``operator.conserve_mass``; score = nRMSE + gap_weight * conservation gap / 100."""
        corrector = conserving(corrector, self.projection)
        metrics = self.ctx.val_rollout(self.autoencoder, self.operator, corrector)
        score = metrics["rollout_nrmse"] + self.cfg.gap_weight * metrics["conservation_gap"] / 100
        return {**metrics, "score": score}
