"""Per-sample amplitude: latents split into a mean token, a unit and the shape in that unit.

A network's error floor is absolute, so a field that starts small or decays to almost nothing
(a 150-fold decay is common at nu = 0.01) gets a relative error many times the median; those few
trajectories decided the spread of the golden nRMSE between seeds (README, "What drives the
spread"). Models with ``amplitude: per_sample`` see each sample's shape at unit rms and its
``log a`` as conditioning (Burgers is not scale-invariant), and scale what they output by ``a``.

``a`` is the rms of the latents about their mean token. With the patch autoencoder a constant
field is the same vector in every token, so ``a`` ignores the normaliser's offset and the mass.
``amplitude: capped`` takes the unit ``min(a, c) / c`` with c = AMPLITUDE_CEILING: fields with
``a >= c`` keep the normaliser's units, exactly as with ``fixed``, and smaller ones are magnified
to rms c, so none is seen smaller than that. The operator sees ``mean + shape`` (:func:`magnified`),
the corrector ``[shape, zhat]`` (:func:`amplitude_tokens`). Measured (golden config, 8 operator
epochs, seeds 0-2, test nRMSE of the operator; README "Training stages"): ``fixed`` 0.039 /
0.069 / 0.038 (two tiny trajectories scored 6.8 and 1.6); ``per_sample`` with ``[shape, z]``
0.053 / 0.051 / 0.057 (the bulk learned slower: per-trajectory medians 0.038-0.041 against
0.029-0.030); ``capped`` c = 0.25 with ``[shape, z]`` 0.052 / 0.051 / 0.047, with
``mean + shape`` 0.041 / 0.047 / 0.042; c = 0.05 with ``mean + shape`` 0.040 / 0.038 / 0.038.
A cap without the division by c (units of c for every large field) was worse than all of them
after 2 epochs (val rollout nRMSE 0.31 / 0.23 / 0.25).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ups.checks import require

# fixed: the normaliser's one scale for every sample; per_sample: each sample's own; capped: the
# normaliser's from AMPLITUDE_CEILING up, smaller fields magnified to that size.
AMPLITUDES = ("fixed", "per_sample", "capped")
AMPLITUDE_FLOOR = 1e-4  # normalised units: a field flatter than this is treated as this flat
# Normalised units (1 = the train data's std); 4% of the golden train frames are smaller (frame
# rms quantiles 1/5/10/25/50%: 0.013, 0.06, 0.12, 0.24, 0.46). Operator test nRMSE at 8 epochs,
# seeds 0-2, `mean + shape` input: 0.0404 / 0.0385 / 0.0385 (CV 2.9%) at 0.05, 0.0408 / 0.0468 /
# 0.0422 (CV 7.2%) at 0.25.
AMPLITUDE_CEILING = 0.05
# ``loss_scale: amplitude`` weighs a frame by 1 / unit^2 with the unit floored here, so no frame
# weighs more than 100 times a frame at or above the ceiling (rms below a tenth of it is floored).
AMPLITUDE_LOSS_FLOOR = 0.1


def check_amplitude(value: str) -> None:
    require(value in AMPLITUDES, "amplitude", f"must be one of {AMPLITUDES}, got {value!r}")


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
