"""Patch autoencoder: the periodic grid cut into tokens of consecutive points, each mapped
linearly to a latent vector and back.

``u`` (B, X) -> ``z`` (B, T, D) -> ``u`` (B, X), with X = T * P: token t holds the P points
``t*P .. t*P + P - 1``, encoded by one shared ``Linear(P, D)`` and decoded by one shared
``Linear(D, P)``. It is the patch embedding of vision and PDE transformers, trained to invert
itself. Why not the deeper conv autoencoder: on the golden data the same latent operator learns
markedly faster on these tokens, whose geometry is that of the physical field (README, "Training
stages"). Deterministic, no batch statistics; a shift of the grid by P points is a shift of the
latent by one token.
"""

from __future__ import annotations

import torch
from torch import nn

from ups.models.autoencoder import AutoencoderConfig
from ups.models.layers import materialise


class PatchAutoencoder(nn.Module):
    """``encode(u (B, X)) -> z (B, T, D)``; ``decode(z) -> u (B, X)``; forward = decode(encode)."""

    def __init__(self, cfg: AutoencoderConfig, points: int, *, generator: torch.Generator):
        super().__init__()
        cfg.validate()
        if points % cfg.latent_tokens:
            raise ValueError(
                f"points={points} must be a multiple of latent_tokens={cfg.latent_tokens}"
            )
        self.cfg = cfg
        self.points = points
        self.patch = points // cfg.latent_tokens
        with torch.device("meta"):
            self.encoder = nn.Linear(self.patch, cfg.latent_dim)
            self.decoder = nn.Linear(cfg.latent_dim, self.patch)
        materialise(self, generator)

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        if u.shape[-1] != self.points:
            raise ValueError(f"expected {self.points} grid points, got shape {tuple(u.shape)}")
        return self.encoder(u.unflatten(-1, (self.cfg.latent_tokens, self.patch)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).flatten(-2)  # (B, T, P) -> (B, X)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(u))
