"""Latent operator: one time step in latent space, ``z_next = z + F(z, cond)``.

F is the shared :class:`ConditionedTransformer` over the T latent tokens, conditioned on the
physical (dt, nu) of each sample through adaLN. F is exactly zero at initialisation, so a fresh
operator is the identity map (persistence), the natural start for a small time step.

With ``amplitude: per_sample`` the step is taken relative to the sample's own amplitude ``a``
(:mod:`ups.models.amplitude`): ``z_next = z + a * F(mean + (z - mean) / a, cond, log a)``, with
``mean`` the mean token; with ``capped`` the unit ``a`` is replaced by ``min(a, c) / c``, so a
field at least ``c`` large is stepped exactly as with ``fixed``.
"""

from __future__ import annotations

import torch
from torch import nn

from ups.models.amplitude import (
    AmplitudeEmbedding,
    amplitude_ceiling,
    magnified,
)
from ups.models.configs import OperatorConfig
from ups.models.layers import CondEmbedding, materialise
from ups.models.transformer import ConditionedTransformer


class LatentOperator(nn.Module):
    """``forward(z (B, T, D), cond (B, 2)) -> z_next (B, T, D)`` with a residual update."""

    def __init__(
        self, cfg: OperatorConfig, tokens: int, latent_dim: int, *, generator: torch.Generator
    ):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.by_amplitude = cfg.amplitude != "fixed"
        self.ceiling = amplitude_ceiling(cfg.amplitude)
        with torch.device("meta"):
            self.cond_embed = CondEmbedding(cfg.width)
            if self.by_amplitude:
                self.amplitude_embed = AmplitudeEmbedding(cfg.width)
            self.backbone = ConditionedTransformer(
                latent_dim,
                latent_dim,
                tokens,
                cfg.width,
                cfg.depth,
                cfg.heads,
                cfg.mlp_ratio,
                cfg.position,
            )
        materialise(self, generator)

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        c = self.cond_embed(cond)
        if not self.by_amplitude:
            return z + self.backbone(z, c)
        tokens, amplitude = magnified(z, self.ceiling)
        return z + amplitude * self.backbone(tokens, c + self.amplitude_embed(amplitude))
