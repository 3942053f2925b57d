"""Per-sample amplitude: latents split into a mean token, an amplitude and a unit-rms shape.

A network's error floor is absolute, so a field that starts small or decays to almost nothing
(a 150-fold decay is common at nu = 0.01) gets a relative error many times the median; those few
trajectories decided the spread of the golden nRMSE between seeds (README, "What drives the
spread"). Models with ``amplitude: per_sample`` see each sample's shape at unit rms and its
``log a`` as conditioning (Burgers is not scale-invariant), beside the latents themselves, and
scale what they output by ``a``.

``a`` is the rms of the latents about their mean token. With the patch autoencoder a constant
field is the same vector in every token, so ``a`` ignores the normaliser's offset and the mass.
"""

from __future__ import annotations

import torch
from torch import nn

from ups.checks import require

AMPLITUDES = ("fixed", "per_sample")  # fixed: the normaliser's one scale for every sample
AMPLITUDE_FLOOR = 1e-4  # normalised units: a field flatter than this is treated as this flat


def check_amplitude(value: str) -> None:
    require(value in AMPLITUDES, "amplitude", f"must be one of {AMPLITUDES}, got {value!r}")


def amplitude_split(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Latents (B, T, D) -> mean token (B, 1, D), amplitude ``a`` (B, 1, 1) = rms of ``z`` about
    that mean, floored at AMPLITUDE_FLOOR, and the shape ``(z - mean) / a`` (B, T, D)."""
    mean = z.mean(dim=1, keepdim=True)
    deviation = z - mean
    power = deviation.square().mean(dim=(1, 2), keepdim=True)
    amplitude = power.clamp_min(AMPLITUDE_FLOOR**2).sqrt()
    return mean, amplitude, deviation / amplitude


def amplitude_tokens(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents (B, T, D) -> tokens ``[shape, z]`` (B, T, 2D) and the amplitude (B, 1, 1).

    ``z`` itself rides along because shapes alone slowed learning: golden config, 8 operator
    epochs, val rollout nRMSE 0.065 / 0.063 / 0.062 with ``[shape, mean]`` tokens against
    0.040 / 0.041 / 0.039 with the fixed amplitude; a large field's nonlinear step is a plain
    product of ``z`` with itself, where the shape alone needs it rebuilt from ``log a``.
    """
    _, amplitude, shape = amplitude_split(z)
    return torch.cat([shape, z], dim=2), amplitude


class AmplitudeEmbedding(nn.Sequential):
    """Amplitude ``a`` (B, 1, 1) -> (B, W) through an MLP of ``log a``."""

    def __init__(self, width: int):
        super().__init__(nn.Linear(1, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, amplitude: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.log(amplitude.flatten(1)))
