"""Exact mass conservation of a latent step.

Periodic Burgers keeps the grid mean of ``u`` (its mass) exactly; a learnt step does not, and
on fields that decay to almost nothing a small drift of the mean is most of the error
(docs/design.md, "Exact mass conservation"). With a decoder that is linear in the latent (the
patch autoencoder), the decoded mass is ``m(z) = sum_{t,d} w_td z_td`` for fixed weights ``w``
(T, D), and the smallest latent change that gives ``z_next`` the mass of ``z`` moves along
``w``:

    project(z_next, z) = z_next - (m(z_next) - m(z)) * w / |w|^2

With an orthonormal basis that spans constants (``latent_dim`` = patch size) this subtracts a
constant from the decoded field, the smallest change of the grid that restores its mean. The
normaliser is a scalar affine map, so keeping the normalised mean keeps the physical one.
"""

from __future__ import annotations

import torch
from torch import nn

from ups.models.configs import LINEAR_KINDS
from ups.rollout import Corrector


def mass_weights(autoencoder: nn.Module) -> torch.Tensor:
    """``w`` (T, D) with ``mean_x decode(z) = sum(w * z)`` for every ``z`` (B, T, D)."""
    if autoencoder.cfg.kind not in LINEAR_KINDS:
        raise TypeError(
            f"mass weights need a decoder linear in the latent ({LINEAR_KINDS}), got the "
            f"{autoencoder.cfg.kind} autoencoder"
        )
    with torch.no_grad():
        per_token = autoencoder.basis().sum(dim=-1) / autoencoder.points  # (D,)
    return per_token.expand(autoencoder.cfg.latent_tokens, -1).clone()


class MassProjection(nn.Module):
    """``forward(z_next, z)``, both (..., T, D): ``z_next`` moved to the mass of ``z``.

    Leading dimensions are free, so an ensemble's per-member training input (B, M, T, D) works.
    The weights are buffers outside the state dict: they are the frozen autoencoder's, whose
    checkpoint holds them."""

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.register_buffer("weights", weights, persistent=False)
        self.register_buffer("direction", weights / weights.square().sum(), persistent=False)

    def mass(self, z: torch.Tensor) -> torch.Tensor:
        """(..., T, D) -> (...): the decoded field's grid mean."""
        return (z * self.weights).sum(dim=(-2, -1))

    def forward(self, z_next: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        drift = self.mass(z_next) - self.mass(z)
        return z_next - drift[..., None, None] * self.direction

    def residual(self, zhat: torch.Tensor, r: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The residual ``r`` added to ``zhat``, changed so that ``zhat + r`` has ``z``'s mass."""
        return self(zhat + r, z) - zhat


def conserving(corrector: Corrector, projection: MassProjection | None) -> Corrector:
    """``corrector`` whose residuals leave each corrected state ``zhat + r`` at the mass of its
    input ``z``; ``corrector`` itself without a projection (no ``operator.conserve_mass``)."""
    if projection is None:
        return corrector

    def conserved(zhat: torch.Tensor, cond: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return projection.residual(zhat, corrector(zhat, cond, z), z)

    return conserved


def projection_of(operator: nn.Module) -> MassProjection | None:
    """The projection that holds ``operator``'s steps (any wrapper or ensemble of
    :class:`MassConserving` steps) to their inputs' mass; None if its steps are free."""
    for module in operator.modules():
        if isinstance(module, MassConserving):
            return module.projection
    return None


class MassConserving(nn.Module):
    """``forward(z (..., T, D), cond) -> step(z, cond)`` moved back to the mass of ``z``."""

    def __init__(self, step: nn.Module, projection: MassProjection):
        super().__init__()
        self.step, self.projection = step, projection

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.projection(self.step(z, cond), z)
