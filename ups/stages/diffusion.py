"""Stage 3: the diffusion residual teacher, an EDM denoiser of ``r`` given ``op(z)``.

Selection and early stopping use val rollouts *with* the sampled correction (nRMSE and
conservation gap) at ``diffusion.val_noise_scale``, never the training loss. Every validation
draws its sampling noise from the same fresh seeded stream, so scores of different epochs are
comparable.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ups.models.diffusion import Denoiser, diffusion_loss, sample
from ups.stages.context import StageContext
from ups.stages.residuals import ResidualStage

NAME = "diffusion"


def build_denoiser(ctx: StageContext) -> Denoiser:
    return ctx.latent_model(Denoiser, ctx.cfg.diffusion.model, NAME)


def load_denoiser(ctx: StageContext) -> Denoiser:
    """The trained diffusion teacher of this run, frozen."""
    return ctx.load_frozen(NAME, lambda: build_denoiser(ctx))


class DiffusionStage(ResidualStage):
    name = NAME

    def __init__(self, ctx: StageContext):
        super().__init__(ctx, ctx.cfg.diffusion)
        self.model = build_denoiser(ctx)
        self.model.set_sigma_data(
            float((self.pairs.r / self.model.amplitude(self.pairs.zhat)).std())
        )
        self.operator_only = ctx.val_rollout(self.autoencoder, self.operator)

    def losses(self, batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        zhat, r, z = batch
        cond = self.ctx.cond(len(r))
        return {"denoising": diffusion_loss(self.model, r, zhat, cond, generator, z)}

    @torch.no_grad()
    def validate(self, model: nn.Module) -> dict[str, float]:
        pairs = self.val_pairs
        loss = diffusion_loss(
            model,
            pairs.r,
            pairs.zhat,
            self.ctx.cond(len(pairs)),
            self.ctx.generator(f"{NAME}/val_loss"),
            pairs.z,
        )
        noise = self.ctx.generator(f"{NAME}/val_sampling")

        def corrector(zhat, cond, z):
            return sample(model, zhat, cond, noise, noise_scale=self.cfg.val_noise_scale, z=z)

        metrics = self.corrected_val_metrics(corrector)
        operator_only = {f"operator_{k}": v for k, v in self.operator_only.items()}
        return {"loss": float(loss), **metrics, **operator_only}

    def extra_state(self) -> dict[str, Any]:
        return {}
