"""The classic baseline: FNO-1D ``u_{t+1} = u_t + F(u_t, cond)`` trained on the grid directly.

It depends on the data only (no other stage), and gets the operator's training diet: the same
(trajectory, start) windows of the normalised train split, unrolled ``rollout_horizon`` steps,
with a one-step and a rollout (steps 2..horizon) MSE in grid space. Selection: val rollout nRMSE
from frame 0 in physical units, the number every other stage is selected on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ups.models.fno import FNO1d
from ups.stages.context import (
    StageContext,
    n_batches,
    rollout_windows,
    val_rollout_metrics,
    weighted_mse,
    window_batches,
)

NAME = "fno"

# (u (B, X), cond (B, 2)) -> u_next (B, X): an FNO1d, or any model with its signature.
GridStep = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def fno_rollout(model: GridStep, u0: torch.Tensor, cond: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` autoregressive steps from ``u0`` (B, X) -> predicted frames (B, steps, X).

    Normalised grid in and out; ``cond`` (B, 2) is the physical (dt, nu). The one rollout path of
    the baseline: training unrolls through it, validation and evaluation call it under no_grad.
    """
    u, out = u0, []
    for _ in range(steps):
        u = model(u, cond)
        out.append(u)
    return torch.stack(out, dim=1)


def build_fno(ctx: StageContext) -> FNO1d:
    model = FNO1d(
        ctx.cfg.fno.model, ctx.dataset.train.shape[-1], generator=ctx.init_generator(NAME)
    )
    return model.to(ctx.device)


def load_fno(ctx: StageContext) -> FNO1d:
    """The trained FNO baseline of this run, frozen."""
    return ctx.load_frozen(NAME, lambda: build_fno(ctx))


class FnoStage:
    name = NAME

    def __init__(self, ctx: StageContext):
        self.ctx, self.cfg = ctx, ctx.cfg.fno
        self.train_cfg = self.cfg.train
        self.model = build_fno(ctx)
        self.horizon = self.cfg.rollout_horizon
        self.windows = rollout_windows(ctx.train, self.horizon, NAME)  # (trajectory, start) pairs

    def steps_per_epoch(self) -> int:
        return n_batches(len(self.windows), self.train_cfg.batch_size)

    def batches(self, generator: torch.Generator):
        batch_size = self.train_cfg.batch_size
        for traj, frames in window_batches(self.windows, self.horizon, batch_size, generator):
            yield self.ctx.train[traj, frames]

    def losses(self, batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """batch: grid frames (B, H+1, X) of one window each."""
        cond = self.ctx.cond(len(batch))
        step = self.model if self.cfg.unroll_gradient else _detached(self.model)
        pred = fno_rollout(step, batch[:, 0], cond, self.horizon)  # (B, H, X)
        weights = self.ctx.frame_weights(batch[:, 1:], self.cfg.loss_scale)  # (B, H) or None
        one_step = weighted_mse(pred[:, 0], batch[:, 1], None if weights is None else weights[:, 0])
        terms = {"one_step": self.cfg.one_step_weight * one_step}
        if self.horizon > 1 and self.cfg.rollout_weight > 0:
            w = None if weights is None else weights[:, 1:]
            rollout = weighted_mse(pred[:, 1:], batch[:, 2:], w)
            terms["rollout"] = self.cfg.rollout_weight * rollout
        return terms

    @torch.no_grad()
    def validate(self, model: nn.Module) -> dict[str, float]:
        val = self.ctx.val  # (N, T, X)
        pred = fno_rollout(model, val[:, 0], self.ctx.cond(len(val)), val.shape[1] - 1)
        metrics = val_rollout_metrics(self.ctx.physical(pred), self.ctx.physical(val))
        inputs = val[:, :-1].flatten(0, 1)
        one_step = model(inputs, self.ctx.cond(len(inputs)))
        loss = float(F.mse_loss(one_step, val[:, 1:].flatten(0, 1)))
        return {"loss": loss, **metrics, "score": metrics["rollout_nrmse"]}

    def extra_state(self) -> dict[str, Any]:
        # The baseline reads no autoencoder, so it carries the normalisation it was trained in.
        return {"normalizer": self.ctx.normalizer.to_dict()}


def _detached(model: GridStep) -> GridStep:
    """A step that does not backpropagate into the state it starts from."""
    return lambda u, cond: model(u.detach(), cond)
