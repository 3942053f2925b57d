"""Patch autoencoder: the periodic grid cut into tokens of consecutive points, each projected
onto an orthonormal basis and back.

``u`` (B, X) -> ``z`` (B, T, D) -> ``u`` (B, X), with X = T * P: token t holds the P points
``t*P .. t*P + P - 1``. One shared basis ``W`` (D, P) with orthonormal rows encodes every patch,
``z = W p``, and its transpose decodes, ``p = W^T z``. With D = P that is an exact change of basis;
with D < P training finds the best D-dimensional subspace of the patches (their principal one).

Why orthonormal: the latent operator then sees coordinates with the geometry of the physical
field whatever the seed; a free ``Linear(P, D)`` pair trained to invert itself ends up
conditioned differently per seed, and the operator's progress follows. With D = P every
orthonormal basis reconstructs exactly, so training leaves the basis where it started:
``init: dct`` starts every seed from the same one (the DCT), ``random`` from the seed's draw.
Why patches rather than the conv autoencoder: the same operator learns markedly faster on them
(both measured: docs/design.md, "Stages"). Deterministic, no batch statistics; a shift of the
grid by P points is a shift of the latent by one token.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ups.checks import require
from ups.models.configs import AutoencoderConfig
from ups.models.layers import materialise


def dct_rows(rows: int, size: int) -> torch.Tensor:
    """The first ``rows`` rows of the orthonormal DCT-II of length ``size``: (rows, size), lowest
    frequency first; row 0 is the patch mean times sqrt(size)."""
    k = torch.arange(rows, dtype=torch.float64)[:, None]
    n = torch.arange(size, dtype=torch.float64)[None, :]
    basis = torch.cos(torch.pi * (n + 0.5) * k / size) * math.sqrt(2.0 / size)
    basis[0] /= math.sqrt(2.0)
    return basis.float()


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
        require(
            cfg.latent_dim <= self.patch,
            "latent_dim",
            f"must be <= the patch size {self.patch} (points / latent_tokens) for an orthonormal "
            f"basis, got {cfg.latent_dim}",
        )
        with torch.device("meta"):
            self.encoder = nn.Linear(self.patch, cfg.latent_dim, bias=False)  # W before QR
        materialise(self, generator)
        if cfg.init == "dct":
            with torch.no_grad():
                self.encoder.weight.copy_(dct_rows(cfg.latent_dim, self.patch))

    def basis(self) -> torch.Tensor:
        """The encoder weight with its rows orthonormalised: (D, P), ``basis @ basis.T = I``."""
        q, r = torch.linalg.qr(self.encoder.weight.mT)  # q (P, D): orthonormal columns
        # QR is unique up to the signs of r's diagonal; fixing them keeps the map continuous.
        signs = torch.where(torch.diagonal(r) < 0, -1.0, 1.0)
        return (q * signs).mT

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        if u.shape[-1] != self.points:
            raise ValueError(f"expected {self.points} grid points, got shape {tuple(u.shape)}")
        return u.unflatten(-1, (self.cfg.latent_tokens, self.patch)) @ self.basis().mT

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.basis()).flatten(-2)  # (B, T, P) -> (B, X)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(u))
