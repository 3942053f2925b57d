"""Convolutional autoencoder between the periodic grid and latent tokens.

``u`` (B, X) -> ``z`` (B, T, D) -> ``u`` (B, X). All convolutions pad circularly, because x is
periodic: the latent never sees a fake boundary. The encoder halves the length ``levels`` times
with stride-2 convolutions (X = T * 2**levels); the decoder mirrors it with learned sub-pixel
upsampling. No dropout, no noise, no batch statistics: encoding is a deterministic function of one
sample, so the latent the operator is trained on is the latent it is evaluated on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ups.models.configs import AutoencoderConfig
from ups.models.layers import materialise


def circular_conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Conv1d:
    """Periodic Conv1d; output length = input length / stride (kernel - stride must be even)."""
    pad = (kernel - stride) // 2
    return nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=pad, padding_mode="circular")


class ResBlock(nn.Module):
    """``h + conv(gelu(conv(gelu(h))))`` on (B, C, L)."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.conv1 = circular_conv(channels, channels, kernel)
        self.conv2 = circular_conv(channels, channels, kernel)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.conv2(F.gelu(self.conv1(F.gelu(h))))


class Upsample(nn.Module):
    """Learned x2 upsampling (B, C, L) -> (B, C, 2L): conv to 2C channels, then interleave.

    Mirrors the stride-2 conv of the encoder; a reshape, unlike interpolation, has a
    deterministic backward on every device.
    """

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.conv = circular_conv(channels, 2 * channels, kernel)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, C, L = h.shape
        h = self.conv(h).view(B, C, 2, L)  # channel 2c + j -> position 2l + j
        return h.permute(0, 1, 3, 2).reshape(B, C, 2 * L)


def _levels(points: int, tokens: int) -> int:
    """Number of halvings from ``points`` grid points to ``tokens`` latent tokens."""
    levels = 0
    while tokens * 2**levels < points:
        levels += 1
    if tokens * 2**levels != points:
        raise ValueError(f"points={points} must be latent_tokens={tokens} times a power of two")
    return levels


class Autoencoder(nn.Module):
    """``encode(u (B, X)) -> z (B, T, D)``; ``decode(z) -> u (B, X)``; forward = decode(encode)."""

    def __init__(self, cfg: AutoencoderConfig, points: int, *, generator: torch.Generator):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.points = points
        levels = _levels(points, cfg.latent_tokens)
        C, k, n = cfg.channels, cfg.kernel, cfg.blocks_per_level
        with torch.device("meta"):
            enc: list[nn.Module] = [circular_conv(1, C, k)]
            dec: list[nn.Module] = [nn.Conv1d(cfg.latent_dim, C, 1)]
            dec += [ResBlock(C, k) for _ in range(n)]
            for _ in range(levels):
                enc += [ResBlock(C, k) for _ in range(n)] + [circular_conv(C, C, 4, stride=2)]
                dec += [Upsample(C, k)] + [ResBlock(C, k) for _ in range(n)]
            enc += [ResBlock(C, k) for _ in range(n)] + [nn.GELU(), nn.Conv1d(C, cfg.latent_dim, 1)]
            dec += [nn.GELU(), circular_conv(C, 1, k)]
            self.encoder = nn.Sequential(*enc)
            self.decoder = nn.Sequential(*dec)
        materialise(self, generator)

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        if u.shape[-1] != self.points:
            raise ValueError(f"expected {self.points} grid points, got shape {tuple(u.shape)}")
        return self.encoder(u.unsqueeze(1)).transpose(1, 2)  # (B, D, T) -> (B, T, D)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z.transpose(1, 2)).squeeze(1)  # (B, D, T) -> (B, X)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(u))
