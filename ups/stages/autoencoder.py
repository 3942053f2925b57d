"""Stage 1: the autoencoder, grid u (B, X) <-> latent tokens z (B, T_tok, D)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ups.metrics import conservation_gap, nrmse
from ups.models.autoencoder import Autoencoder
from ups.models.patch_autoencoder import PatchAutoencoder
from ups.stages.context import StageContext, index_batches, n_batches

NAME = "autoencoder"


AUTOENCODERS = {"conv": Autoencoder, "patch": PatchAutoencoder}


def build_autoencoder(ctx: StageContext) -> Autoencoder | PatchAutoencoder:
    cfg = ctx.cfg.autoencoder.model
    model = AUTOENCODERS[cfg.kind](
        cfg, ctx.dataset.train.shape[-1], generator=ctx.init_generator(NAME)
    )
    return model.to(ctx.device)


def load_autoencoder(ctx: StageContext) -> Autoencoder | PatchAutoencoder:
    """The trained autoencoder of this run, frozen."""
    return ctx.load_frozen(NAME, lambda: build_autoencoder(ctx))


class AutoencoderStage:
    """Reconstruct every stored frame of the train split; select on val reconstruction nRMSE."""

    name = NAME

    def __init__(self, ctx: StageContext):
        self.ctx = ctx
        self.train_cfg = ctx.cfg.autoencoder.train
        self.model = build_autoencoder(ctx)
        self.frames = ctx.train.flatten(0, 1)  # (N*T, X): every frame is a training sample

    def steps_per_epoch(self) -> int:
        return n_batches(len(self.frames), self.train_cfg.batch_size)

    def batches(self, generator: torch.Generator):
        for index in index_batches(len(self.frames), self.train_cfg.batch_size, generator):
            yield self.frames[index]

    def losses(self, batch: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"reconstruction": F.mse_loss(self.model(batch), batch)}

    @torch.no_grad()
    def validate(self, model: nn.Module) -> dict[str, float]:
        val = self.ctx.val  # (N, T, X)
        recon = model(val.flatten(0, 1)).view_as(val)
        pred, true = self.ctx.physical(recon), self.ctx.physical(val)
        score = nrmse(pred, true)
        return {
            "loss": float(F.mse_loss(recon, val)),
            "recon_nrmse": score,
            # Mass error of each reconstructed frame relative to its own true frame, percent.
            "recon_conservation_gap": max(
                conservation_gap(pred[:, t : t + 1], true[:, t]) for t in range(true.shape[1])
            ),
            "score": score,
        }

    def extra_state(self) -> dict[str, Any]:
        return {"normalizer": self.ctx.normalizer.to_dict()}
