"""Conditional EDM diffusion (Karras et al. 2022) of the operator residual.

The model learns p(r | zhat, cond) for ``r = z_next - op(z)`` (B, T, D), given the operator's
prediction ``zhat = op(z)`` (B, T, D) and the physical ``cond`` (B, 2). Noise is real: training
adds ``sigma * eps`` with log-normal sigma, and sampling integrates the probability-flow ODE from
pure noise with Heun's method. Every sigma in :class:`DiffusionConfig` is in units of the
``sigma_data`` buffer (the train residuals' std), so one schedule fits whatever scale the
residual has; absolute sigmas are ``cfg value * sigma_data``.

With ``schedule: refiner`` (PDE-Refiner, Lippe et al. 2023) the same denoiser is trained on a few
fixed levels only (``refiner_sigmas``: ``sample_steps`` levels from sigma_max down to sigma_min,
geometric) and sampled by refinement: start at ``r = 0`` (the operator's own step) and, level by
level, ``r <- D(r + sigma * eps, sigma)``. The smallest levels make the loss ask for the
residual's low-amplitude detail, which a single MSE prediction neglects; the sampler costs one
network evaluation per level.

With ``amplitude: per_sample`` (or ``capped``) the residual is modelled in the unit ``a`` of its
``zhat`` (:mod:`ups.models.amplitude`): training divides ``r`` by ``a``, sampling multiplies by
it, and the denoiser sees ``zhat`` beside its shape in that unit, with ``log a`` as conditioning.
So the correction of a small or decayed field is as fine as that of a large one.

With ``previous_state: true`` the denoiser also sees the state ``z`` the prediction was made
from, as the operator's step ``zhat - z`` (in the same unit as ``zhat``): what the operator did
is evidence of what it got wrong. Every function below then needs ``z`` (B, T, D).
"""

from __future__ import annotations

import torch
from torch import nn

from ups.models.amplitude import (
    AmplitudeEmbedding,
    amplitude_ceiling,
    amplitude_split,
    amplitude_tokens,
)
from ups.models.configs import DiffusionConfig
from ups.models.layers import CondEmbedding, NoiseEmbedding, materialise
from ups.models.transformer import ConditionedTransformer


class Denoiser(nn.Module):
    """EDM-preconditioned denoiser ``D(x, sigma, zhat, cond) -> estimate of r`` (B, T, D).

    The network F sees, per token, ``[c_in * x, zhat]`` (2D channels) and the conditioning vector
    ``cond_embed(cond) + noise_embed(c_noise)``; ``D = c_skip * x + c_out * F``. F starts at zero.
    With ``amplitude: per_sample`` or ``capped``, ``x``, ``sigma`` and ``D`` are in units of
    ``amplitude(zhat)``, F sees ``[c_in * x, shape, zhat]`` (3D) and ``log a`` joins the
    conditioning. With ``previous_state``, F also sees the step ``(zhat - z) / amplitude`` (+D).
    """

    def __init__(
        self, cfg: DiffusionConfig, tokens: int, latent_dim: int, *, generator: torch.Generator
    ):
        super().__init__()
        cfg.validate()
        self.cfg, self.tokens, self.latent_dim = cfg, tokens, latent_dim
        self.by_amplitude = cfg.amplitude != "fixed"
        self.ceiling = amplitude_ceiling(cfg.amplitude)
        channels = (3 if self.by_amplitude else 2) * latent_dim
        channels += latent_dim if cfg.previous_state else 0
        with torch.device("meta"):
            self.cond_embed = CondEmbedding(cfg.width)
            self.noise_embed = NoiseEmbedding(cfg.width)
            self.backbone = ConditionedTransformer(
                channels, latent_dim, tokens, cfg.width, cfg.depth, cfg.heads, cfg.mlp_ratio
            )
            if self.by_amplitude:
                self.amplitude_embed = AmplitudeEmbedding(cfg.width)
        materialise(self, generator)
        # Set by the training stage from the train residuals' std; saved with the weights.
        self.register_buffer("sigma_data", torch.tensor(1.0))

    def set_sigma_data(self, value: float) -> None:
        """Record the data scale (std of the train residuals) that the schedule is relative to."""
        if not value > 0:
            raise ValueError(f"sigma_data must be > 0, got {value}")
        self.sigma_data.fill_(float(value))

    def amplitude(self, zhat: torch.Tensor) -> torch.Tensor:
        """The unit of the residual given ``zhat`` (B, T, D): (B, 1, 1), all ones if fixed."""
        if not self.by_amplitude:
            return zhat.new_ones(zhat.shape[0], 1, 1)
        return amplitude_split(zhat, self.ceiling)[1]

    def sigma_bounds(self) -> tuple[float, float]:
        """Absolute (sigma_min, sigma_max) = config values times sigma_data."""
        sd = float(self.sigma_data)
        return self.cfg.sigma_min * sd, self.cfg.sigma_max * sd

    def coefficients(self, sigma: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """EDM preconditioning (c_skip, c_out, c_in, c_noise) for sigma (B,), each (B,)."""
        sd = self.sigma_data
        norm = torch.sqrt(sigma**2 + sd**2)
        # c_noise relative to sigma_data keeps the noise embedding scale-free.
        return sd**2 / norm**2, sigma * sd / norm, 1 / norm, torch.log(sigma / sd) / 4

    def forward(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        zhat: torch.Tensor,
        cond: torch.Tensor,
        z: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: noisy residual (B, T, D); sigma: absolute noise level (B,) or scalar (both in units
        of ``amplitude(zhat)``); z: the state ``zhat`` was predicted from (B, T, D), required
        with ``previous_state`` and ignored without."""
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1)
        sigma = sigma.expand(x.shape[0])
        c_skip, c_out, c_in, c_noise = self.coefficients(sigma)
        c = self.cond_embed(cond) + self.noise_embed(c_noise)  # (B, W)
        context, unit = [zhat], None
        if self.by_amplitude:
            shape_and_zhat, unit = amplitude_tokens(zhat, self.ceiling)
            c = c + self.amplitude_embed(unit)
            context = [shape_and_zhat]
        if self.cfg.previous_state:
            context.append(_step_tokens(zhat, z, unit))
        inp = torch.cat([c_in[:, None, None] * x, *context], dim=2)  # (B, T, channels)
        return c_skip[:, None, None] * x + c_out[:, None, None] * self.backbone(inp, c)


def _step_tokens(
    zhat: torch.Tensor, z: torch.Tensor | None, unit: torch.Tensor | None
) -> torch.Tensor:
    """The operator's step ``zhat - z`` (B, T, D) in the residual's ``unit`` (B, 1, 1; None:
    the normaliser's units)."""
    if z is None:
        raise ValueError(
            "this denoiser has previous_state: true, so it needs the state z that zhat was"
            " predicted from; pass z"
        )
    return zhat - z if unit is None else (zhat - z) / unit


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float) -> torch.Tensor:
    """EDM's n noise levels (n,), decreasing from exactly sigma_max to exactly sigma_min.

    Evenly spaced in sigma**(1/rho): rho = 7 spends most steps at low noise, where detail forms.
    """
    if n == 1:
        return torch.tensor([sigma_max], dtype=torch.float32)
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    sigmas[0], sigmas[-1] = sigma_max, sigma_min
    return sigmas.to(torch.float32)


def refiner_sigmas(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """PDE-Refiner's n noise levels (n,): geometric, from exactly sigma_max to exactly sigma_min
    (n = 1: sigma_max alone)."""
    if n == 1:
        return torch.tensor([sigma_max], dtype=torch.float32)
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    sigmas = sigma_max * (sigma_min / sigma_max) ** ramp
    sigmas[0], sigmas[-1] = sigma_max, sigma_min
    return sigmas.to(torch.float32)


def training_sigmas(denoiser: Denoiser, batch: int, generator: torch.Generator) -> torch.Tensor:
    """Absolute training noise levels (batch,) drawn from ``generator``: log-normal around
    sigma_data (edm), or uniform over the refiner's levels (refiner)."""
    cfg, device = denoiser.cfg, denoiser.sigma_data.device
    if cfg.schedule == "refiner":
        levels = refiner_sigmas(cfg.sample_steps, *denoiser.sigma_bounds()).to(device)
        pick = torch.randint(len(levels), (batch,), generator=generator, device=device)
        return levels[pick]
    ln_sigma = cfg.p_mean + cfg.p_std * torch.randn(batch, generator=generator, device=device)
    return torch.exp(ln_sigma) * denoiser.sigma_data


def diffusion_loss(
    denoiser: Denoiser,
    r: torch.Tensor,
    zhat: torch.Tensor,
    cond: torch.Tensor,
    generator: torch.Generator,
    z: torch.Tensor | None = None,
) -> torch.Tensor:
    """EDM training loss (scalar): ``mean lambda(sigma) |D(r + sigma eps, sigma) - r|^2``.

    sigma per sample from :func:`training_sigmas`; lambda = 1 / c_out^2 makes the effective
    target unit-variance (at small sigma: PDE-Refiner's noise-prediction loss), so an untrained
    (zero-F) model scores about 1.
    """
    sd = denoiser.sigma_data
    r = r / denoiser.amplitude(zhat)
    sigma = training_sigmas(denoiser, r.shape[0], generator)  # (B,)
    eps = torch.randn(r.shape, generator=generator, device=r.device)
    denoised = denoiser(r + sigma[:, None, None] * eps, sigma, zhat, cond, z)
    weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
    return (weight[:, None, None] * (denoised - r) ** 2).mean()


def heun_step(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigma: torch.Tensor,
    sigma_next: torch.Tensor,
    zhat: torch.Tensor,
    cond: torch.Tensor,
    z: torch.Tensor | None = None,
) -> torch.Tensor:
    """One step of the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma (EDM Alg. 1).

    sigma, sigma_next: (B,) or scalars. Heun (2nd order) unless sigma_next == 0, then Euler.
    """
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1, 1)
    s_next = torch.as_tensor(sigma_next, dtype=x.dtype, device=x.device).reshape(-1, 1, 1)
    d = (x - denoiser(x, s.flatten(), zhat, cond, z)) / s
    x_euler = x + (s_next - s) * d
    if bool((s_next == 0).any()):
        return x_euler
    d_next = (x_euler - denoiser(x_euler, s_next.flatten(), zhat, cond, z)) / s_next
    return x + (s_next - s) * (d + d_next) / 2


@torch.no_grad()
def sample(
    denoiser: Denoiser,
    zhat: torch.Tensor,
    cond: torch.Tensor,
    generator: torch.Generator,
    steps: int | None = None,
    noise_scale: float = 1.0,
    z: torch.Tensor | None = None,
) -> torch.Tensor:
    """Residual samples r (B, T, D) in the residual's own units (multiplied by
    ``amplitude(zhat)``); every random draw comes from ``generator``, so the same generator
    state gives bitwise-identical samples. ``steps`` defaults to ``cfg.sample_steps``.

    edm: the deterministic Heun sampler (EDM Algorithm 1, no churn) from ``noise_scale *
    sigma_max * N(0, 1)``, 2 * steps - 1 network evaluations. refiner: :func:`refine`.
    """
    cfg = denoiser.cfg
    steps = cfg.sample_steps if steps is None else steps
    if cfg.schedule == "refiner":
        return refine(denoiser, zhat, cond, generator, steps, noise_scale, z)
    sigma_min, sigma_max = denoiser.sigma_bounds()
    sigmas = karras_sigmas(steps, sigma_min, sigma_max, cfg.rho).to(zhat.device)
    sigmas = torch.cat([sigmas, sigmas.new_zeros(1)])
    shape = (zhat.shape[0], denoiser.tokens, denoiser.latent_dim)
    x = noise_scale * sigma_max * torch.randn(shape, generator=generator, device=zhat.device)
    for i in range(steps):
        x = heun_step(denoiser, x, sigmas[i], sigmas[i + 1], zhat, cond, z)
    return x * denoiser.amplitude(zhat)


def refine(
    denoiser: Denoiser,
    zhat: torch.Tensor,
    cond: torch.Tensor,
    generator: torch.Generator,
    steps: int,
    noise_scale: float = 1.0,
    z: torch.Tensor | None = None,
) -> torch.Tensor:
    """PDE-Refiner's sampler: from ``r = 0``, ``r <- D(r + noise_scale * sigma * eps, sigma)``
    over :func:`refiner_sigmas` (``steps`` network evaluations); returns r (B, T, D) in the
    residual's own units. ``noise_scale = 0`` refines deterministically."""
    sigmas = refiner_sigmas(steps, *denoiser.sigma_bounds()).to(zhat.device)
    shape = (zhat.shape[0], denoiser.tokens, denoiser.latent_dim)
    r = torch.zeros(shape, device=zhat.device)
    for sigma in sigmas:
        eps = torch.randn(shape, generator=generator, device=zhat.device)
        r = denoiser(r + noise_scale * sigma * eps, sigma, zhat, cond, z)
    return r * denoiser.amplitude(zhat)
