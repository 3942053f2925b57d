"""Per-sample amplitude: latents split into a mean token, a unit and the shape in that unit.

A network's error floor is absolute, so a field that starts small or decays to almost nothing
gets a relative error many times the median; those few trajectories decided the spread of the
golden nRMSE between seeds (docs/design.md, "Stages"). Models with ``amplitude: per_sample``
see each sample's shape at unit rms and its ``log a`` as conditioning (Burgers is not
scale-invariant), and scale what they output by ``a``.

``a`` is the rms of the latents about their mean token. With the patch autoencoder a constant
field is the same vector in every token, so ``a`` ignores the normaliser's offset and the mass.
``amplitude: capped`` takes the unit ``min(a, c) / c`` with c = AMPLITUDE_CEILING: fields with
``a >= c`` keep the normaliser's units, exactly as with ``fixed``, and smaller ones are magnified
to rms c, so none is seen smaller than that. The operator sees ``mean + shape`` (:func:`magnified`),
the corrector ``[shape, zhat]`` (:func:`amplitude_tokens`). Why these choices, with the
measurements behind them: docs/design.md, "Stages".
"""

from __future__ import annotations

import math

import torch
from torch import nn

AMPLITUDE_FLOOR = 1e-4  # normalised units: a field flatter than this is treated as this flat
# Normalised units (1 = the train data's std); the cap's choice: docs/design.md, "Stages".
AMPLITUDE_CEILING = 0.05
# ``loss_scale: amplitude`` weighs a frame by 1 / unit^2 with the unit floored here, so no frame
# weighs more than 100 times a frame at or above the ceiling (rms below a tenth of it is floored).
AMPLITUDE_LOSS_FLOOR = 0.1


def amplitude_ceiling(mode: str) -> float:
    """The amplitude from which a model of this ``amplitude`` mode keeps the normaliser's units
    (normalised units; infinite for ``per_sample``)."""
    return AMPLITUDE_CEILING if mode == "capped" else math.inf


def amplitude_split(
    z: torch.Tensor, ceiling: float = math.inf
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Latents (B, T, D) -> mean token (B, 1, D), the unit (B, 1, 1) and the shape
    ``(z - mean) / unit`` (B, T, D). With ``a`` the rms of ``z`` about its mean token, floored at
    AMPLITUDE_FLOOR, the unit is ``a`` (infinite ``ceiling``) or ``min(a, ceiling) / ceiling``."""
    mean = z.mean(dim=1, keepdim=True)
    deviation = z - mean
    rms = deviation.square().mean(dim=(1, 2), keepdim=True).sqrt().clamp_min(AMPLITUDE_FLOOR)
    unit = rms if math.isinf(ceiling) else rms.clamp_max(ceiling) / ceiling
    return mean, unit, deviation / unit


def amplitude_tokens(
    z: torch.Tensor, ceiling: float = math.inf
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents (B, T, D) -> the corrector's tokens ``[shape, z]`` (B, T, 2D) and the unit
    (B, 1, 1). ``z`` rides along so a large field's size is not only in ``log a``; the operator
    instead takes :func:`magnified`, which is ``z`` itself above a cap."""
    _, amplitude, shape = amplitude_split(z, ceiling)
    return torch.cat([shape, z], dim=2), amplitude


def magnified(z: torch.Tensor, ceiling: float = math.inf) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents (B, T, D) -> ``mean + shape`` (B, T, D), their deviation from the mean token
    divided by the unit, and the unit (B, 1, 1). With ``capped``, a field at least ``ceiling``
    large is returned unchanged, so the operator sees it exactly as with ``fixed``."""
    mean, unit, shape = amplitude_split(z, ceiling)
    return mean + shape, unit


def amplitude_loss_weights(z: torch.Tensor, ceiling: float) -> torch.Tensor:
    """True latent frames (..., T, D) -> loss weights (...): ``1 / unit^2``, the unit floored at
    AMPLITUDE_LOSS_FLOOR, so a squared error weighted by it is in the units a model with this
    ``ceiling`` steps the frame in."""
    unit = amplitude_split(z.flatten(0, -3), ceiling)[1].reshape(z.shape[:-2])
    return unit.clamp_min(AMPLITUDE_LOSS_FLOOR).pow(-2)


class AmplitudeEmbedding(nn.Sequential):
    """Unit ``a`` (B, 1, 1) -> (B, W) through an MLP of ``log a``."""

    def __init__(self, width: int):
        super().__init__(nn.Linear(1, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, amplitude: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.log(amplitude.flatten(1)))
