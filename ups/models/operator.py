"""Latent operator: one time step in latent space, ``z_next = z + F(z, cond)``.

F is the shared :class:`ConditionedTransformer` over the T latent tokens, conditioned on the
physical (dt, nu) of each sample through adaLN. F is exactly zero at initialisation, so a fresh
operator is the identity map (persistence), the natural start for a small time step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ups.models.layers import CondEmbedding, materialise
from ups.models.transformer import ConditionedTransformer, check_transformer_size


@dataclass(frozen=True)
class OperatorConfig:
    """Size of the latent operator's transformer."""

    width: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 2
    # absolute: a learned embedding per token; relative: a learned attention bias per periodic
    # token offset, so the operator commutes with cyclic token shifts (periodic translations).
    position: str = "absolute"

    def validate(self) -> None:
        check_transformer_size(self.width, self.depth, self.heads, self.mlp_ratio, self.position)


class LatentOperator(nn.Module):
    """``forward(z (B, T, D), cond (B, 2)) -> z_next (B, T, D)`` with a residual update."""

    def __init__(
        self, cfg: OperatorConfig, tokens: int, latent_dim: int, *, generator: torch.Generator
    ):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        with torch.device("meta"):
            self.cond_embed = CondEmbedding(cfg.width)
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
        return z + self.backbone(z, self.cond_embed(cond))
