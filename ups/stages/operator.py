"""Stage 2: the latent operator ``z_{t+1} = z_t + F(z_t, cond)`` on frozen autoencoder latents.

Training windows are (trajectory, start) pairs of the train split; each unrolls ``horizon``
steps from the encoded start frame. Loss terms (each present only when its weight is > 0):
one-step and rollout (steps 2..horizon), each in latent space (against the encoded truth) and in
decoded space (against the true grid frames). With ``augment``, each window is first moved by
a random exact symmetry of periodic Burgers (shift, reflection) and encoded afresh.
With ``members`` > 1 the operator is a :class:`~ups.models.ensemble.MeanEnsemble`: each member
draws its own windows (its own shuffle and symmetries) and unrolls its own predictions, and the
loss terms are the members' mean. Selection: val rollout nRMSE of the ensemble from frame 0.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ups.data.augment import random_symmetry
from ups.models.amplitude import amplitude_ceiling, amplitude_loss_weights
from ups.models.conservation import MassConserving, MassProjection, mass_weights
from ups.models.ensemble import MeanEnsemble
from ups.models.operator import LatentOperator
from ups.stages.autoencoder import load_autoencoder
from ups.stages.context import (
    StageContext,
    n_batches,
    rollout_windows,
    weighted_mse,
    window_batches,
)

NAME = "operator"


def build_operator(ctx: StageContext, autoencoder: nn.Module) -> nn.Module:
    """A fresh operator on ``autoencoder``'s latents; with ``members`` > 1 an ensemble whose
    member 0 is initialised as the single operator would be and member m from its own stream.
    With ``conserve_mass`` every member's step keeps the decoded field's mass exactly."""
    cfg = ctx.cfg.operator
    names = [NAME, *(f"{NAME}/member{m}" for m in range(1, cfg.members))]
    members = [ctx.latent_model(LatentOperator, cfg.model, n) for n in names]
    if cfg.conserve_mass:
        projection = MassProjection(mass_weights(autoencoder)).to(ctx.device)
        members = [MassConserving(m, projection) for m in members]
    return members[0] if cfg.members == 1 else MeanEnsemble(members)


def load_operator(ctx: StageContext, autoencoder: nn.Module) -> nn.Module:
    """The trained operator of this run on ``autoencoder``'s latents, frozen."""
    return ctx.load_frozen(NAME, lambda: build_operator(ctx, autoencoder))


class OperatorStage:
    name = NAME

    def __init__(self, ctx: StageContext):
        self.ctx, self.cfg = ctx, ctx.cfg.operator
        self.train_cfg = self.cfg.train
        self.autoencoder = load_autoencoder(ctx)
        self.model = build_operator(ctx, self.autoencoder)
        self.horizon = self.cfg.rollout_horizon
        self.windows = rollout_windows(ctx.train, self.horizon, NAME)  # (trajectory, start) pairs
        # (N, T, tokens, D); augmented windows are encoded as they are drawn instead.
        self.latents = None if self.cfg.augment else ctx.encode(self.autoencoder, ctx.train)

    def steps_per_epoch(self) -> int:
        return n_batches(len(self.windows), self.train_cfg.batch_size)

    def batches(self, generator: torch.Generator):
        """Latents (B, H+1, tokens, D) and grid frames (B, H+1, X) of B windows; with members,
        (B, M, H+1, tokens, D) and (B, M, H+1, X), column m member m's own windows."""
        if self.cfg.members == 1:
            yield from self._member_batches(generator)
            return
        # Member 0 keeps the loader stream (its windows are a single operator's); member m > 0
        # gets a stream seeded from a copy of the loader's state, so a resumed epoch repeats.
        fork = torch.Generator().set_state(generator.get_state())
        seeds = torch.randint(2**62, (self.cfg.members - 1,), generator=fork).tolist()
        streams = [generator, *(torch.Generator().manual_seed(s) for s in seeds)]
        for parts in zip(*(self._member_batches(g) for g in streams), strict=True):
            z, u = zip(*parts, strict=True)
            yield torch.stack(z, dim=1), torch.stack(u, dim=1)

    def _member_batches(self, generator: torch.Generator):
        batch_size = self.train_cfg.batch_size
        for traj, frames in window_batches(self.windows, self.horizon, batch_size, generator):
            u = self.ctx.train[traj, frames]  # (B, H+1, X), normalised
            if not self.cfg.augment:
                yield self.latents[traj, frames], u
                continue
            # Drawn here, before DDP shards the batch, so every rank sees the same windows.
            norm = self.ctx.normalizer
            u = norm.transform(random_symmetry(norm.inverse(u), generator))
            yield self.ctx.encode(self.autoencoder, u), u

    def losses(self, batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """batch: as :meth:`batches` yields. With members, every term is the members' mean."""
        z_true, u_true = batch
        cond = self.ctx.cond(len(z_true))
        z, preds = z_true[..., 0, :, :], []  # (B, [M,] tokens, D)
        for _ in range(self.horizon):
            z = self.model(z if self.cfg.unroll_gradient else z.detach(), cond)
            preds.append(z)
        z_pred = torch.stack(preds, dim=-3)  # (B, [M,] H, tokens, D)
        if self.cfg.members > 1:  # each member's windows become rows of their own
            z_pred, z_true, u_true = (t.flatten(0, 1) for t in (z_pred, z_true, u_true))
        weights = self._frame_weights(z_true[:, 1:], u_true[:, 1:])  # (B, H) or None
        terms = {}
        spans = {"one_step": (slice(0, 1), self.cfg.one_step_weight)}
        if self.horizon > 1:
            spans["rollout"] = (slice(1, self.horizon), self.cfg.rollout_weight)
        for span_name, (span, weight) in spans.items():
            if weight == 0:
                continue
            w = None if weights is None else weights[:, span]
            if self.cfg.latent_weight > 0:
                latent = weighted_mse(z_pred[:, span], z_true[:, 1:][:, span], w)
                terms[f"{span_name}_latent"] = weight * self.cfg.latent_weight * latent
            if self.cfg.decoded_weight > 0:
                decoded = self.autoencoder.decode(z_pred[:, span].flatten(0, 1))
                truth = u_true[:, 1:][:, span].flatten(0, 1)
                grid = weighted_mse(decoded, truth, None if w is None else w.flatten())
                terms[f"{span_name}_decoded"] = weight * self.cfg.decoded_weight * grid
        return terms

    def _frame_weights(self, z_true: torch.Tensor, u_true: torch.Tensor) -> torch.Tensor | None:
        """Loss weights of true frames, latents (B, H, T, D) and grid (B, H, X) -> (B, H)."""
        if self.cfg.loss_scale == "amplitude":
            return amplitude_loss_weights(z_true, amplitude_ceiling(self.cfg.model.amplitude))
        return self.ctx.frame_weights(u_true, self.cfg.loss_scale)

    @torch.no_grad()
    def validate(self, model: nn.Module) -> dict[str, float]:
        metrics = self.ctx.val_rollout(self.autoencoder, model)
        z = self.ctx.encode(self.autoencoder, self.ctx.val)
        one_step = model(z[:, :-1].flatten(0, 1), self.ctx.cond(z[:, :-1].flatten(0, 1).shape[0]))
        loss = float(F.mse_loss(one_step, z[:, 1:].flatten(0, 1)))
        members = {  # how far each member alone is from the ensemble's score
            f"member{m}_rollout_nrmse": self.ctx.val_rollout(self.autoencoder, member)[
                "rollout_nrmse"
            ]
            for m, member in enumerate(getattr(model, "members", ()))
        }
        return {"loss": loss, **metrics, **members, "score": metrics["rollout_nrmse"]}

    def extra_state(self) -> dict[str, Any]:
        return {}
