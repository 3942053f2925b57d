"""A mean ensemble of latent step models: independently initialised members, one step each.

At inference ``forward(z (B, T, D), cond (B, 2))`` is the mean of the members' next states, so
the ensemble is a drop-in step model for rollouts, the corrector's residuals and TTC. For
training, ``forward(z (B, M, T, D), cond)`` steps member ``m`` from ``z[:, m]`` alone and
returns (B, M, T, D): every member unrolls its own trajectory and learns on its own loss, and
the rows stay first so a data-parallel run shards samples, never members. Averaging members
trained from their own streams cancels the part of each one's error that depends on its
initialisation and data order, which is what spreads the results of single-model seeds
(docs/results.md, "Seed spread").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MeanEnsemble(nn.Module):
    """Members with the signature ``member(z (B, T, D), cond (B, 2)) -> (B, T, D)``."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if z.dim() == 4:
            if z.shape[1] != len(self.members):
                raise ValueError(
                    f"per-member input must be (B, {len(self.members)}, T, D), got {tuple(z.shape)}"
                )
            return torch.stack([m(z[:, i], cond) for i, m in enumerate(self.members)], dim=1)
        return torch.stack([m(z, cond) for m in self.members]).mean(dim=0)
