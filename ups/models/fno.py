"""FNO-1D (Li et al. 2021), the classic baseline: one time step on the grid, ``u_next = u + F(u)``.

F lifts each grid point's ``[u, sin 2 pi x, cos 2 pi x]`` to ``width`` channels (x is periodic, so
its position enters as a point on the circle, not as a ramp with a seam), adds the embedded
physical conditioning (dt, nu) as a per-sample bias of the lifted channels, applies ``depth``
Fourier layers ``gelu(spectral(h) + pointwise(h))`` and projects back to one channel. The last
projection starts at zero, so a fresh model is the identity (persistence), like the operator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ups.checks import require
from ups.models.configs import FNOConfig
from ups.models.layers import CondEmbedding, SpectralConv1d, ZeroLinear, materialise

PROJECTION_RATIO = 2  # hidden width of the projection MLP, in units of ``width``


def check_modes(modes: int, points: int) -> None:
    """Kept modes must lie strictly below the Nyquist mode ``points // 2`` of the grid."""
    require(
        modes <= points // 2,
        "modes",
        f"must be <= points // 2 = {points // 2} (below Nyquist), got {modes}",
    )


class FourierLayer(nn.Module):
    """``gelu(spectral(h) + pointwise(h))`` on (B, W, X)."""

    def __init__(self, width: int, modes: int):
        super().__init__()
        self.spectral = SpectralConv1d(width, width, modes)
        self.pointwise = nn.Conv1d(width, width, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.spectral(h) + self.pointwise(h))


class FNO1d(nn.Module):
    """``forward(u (B, X), cond (B, 2)) -> u_next (B, X)`` on the normalised grid.

    ``cond`` holds the physical (dt, nu) of each sample.
    """

    def __init__(self, cfg: FNOConfig, points: int, *, generator: torch.Generator):
        super().__init__()
        cfg.validate()
        check_modes(cfg.modes, points)
        self.cfg = cfg
        self.points = points
        W = cfg.width
        with torch.device("meta"):
            self.lift = nn.Conv1d(3, W, 1)  # [u, sin 2 pi x, cos 2 pi x] -> W channels
            self.cond_embed = CondEmbedding(W)
            self.layers = nn.ModuleList(FourierLayer(W, cfg.modes) for _ in range(cfg.depth))
            self.project = nn.Linear(W, PROJECTION_RATIO * W)
            self.head = ZeroLinear(PROJECTION_RATIO * W, 1)
        materialise(self, generator)

    def forward(self, u: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if u.shape[-1] != self.points:
            raise ValueError(f"expected {self.points} grid points, got shape {tuple(u.shape)}")
        features = torch.cat([u.unsqueeze(1), self._circle(u).expand(len(u), 2, -1)], dim=1)
        h = self.lift(features) + self.cond_embed(cond).unsqueeze(-1)  # (B, W, X)
        for layer in self.layers:
            h = layer(h)
        update = self.head(F.gelu(self.project(h.transpose(1, 2))))  # (B, X, 1)
        return u + update.squeeze(-1)

    def _circle(self, u: torch.Tensor) -> torch.Tensor:
        """(1, 2, X): sin and cos of 2 pi x at the grid points x = i / X."""
        x = torch.arange(self.points, device=u.device, dtype=u.dtype) / self.points
        angle = 2 * math.pi * x
        return torch.stack([torch.sin(angle), torch.cos(angle)]).unsqueeze(0)
