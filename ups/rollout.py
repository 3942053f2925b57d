"""Autoregressive rollouts: encode the first frame, step in latent space, decode every step.

One function serves training-time validation and evaluation alike, so a number reported for a
model always comes from the same path. Shapes: ``u0`` (B, X) normalised grid, ``z`` (B, T, D)
latent tokens, ``cond`` (B, 2) = physical (dt, nu).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# (zhat (B, T, D), cond (B, 2), z (B, T, D)) -> a sampled residual (B, T, D) added to the
# operator's step ``zhat = op(z)``.
Corrector = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def latent_rollout(
    operator: nn.Module,
    z0: torch.Tensor,
    cond: torch.Tensor,
    steps: int,
    corrector: Corrector | None = None,
) -> torch.Tensor:
    """``steps`` autoregressive latent steps from ``z0`` (B, T, D) -> (B, steps, T, D)."""
    z, out = z0, []
    for _ in range(steps):
        zhat = operator(z, cond)
        z = zhat if corrector is None else zhat + corrector(zhat, cond, z)
        out.append(z)
    return torch.stack(out, dim=1)


def decode_frames(autoencoder: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Decode latent frames (B, S, T, D) -> grid frames (B, S, X)."""
    return autoencoder.decode(z.flatten(0, 1)).unflatten(0, z.shape[:2])


@torch.no_grad()
def rollout(
    autoencoder: nn.Module,
    operator: nn.Module,
    u0: torch.Tensor,
    cond: torch.Tensor,
    steps: int,
    corrector: Corrector | None = None,
) -> torch.Tensor:
    """Predict ``steps`` frames after ``u0`` (B, X): normalised grid frames (B, steps, X)."""
    z = latent_rollout(operator, autoencoder.encode(u0), cond, steps, corrector)
    return decode_frames(autoencoder, z)
