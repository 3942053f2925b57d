"""Small shared layers and explicit, generator-driven initialisation.

Models build their layers on the meta device (no memory, no random draws) and then
:func:`materialise` allocates them and initialises every parameter from an explicit
``torch.Generator``. The global RNG is never touched, so one generator seed gives the same bits,
and a layer type without a rule here is an error rather than a silent default.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

POSITION_STD = 0.5  # comparable to the unit-scale token projection, so position shows from step 0
NOISE_MAX_FREQ = 100.0  # highest frequency of the noise-level features (c_noise spans about 3)


class ZeroLinear(nn.Linear):
    """A linear layer initialised to exactly zero (adaLN modulation, output heads).

    A zero head makes a residual branch start as a no-op; training moves it (the gradient w.r.t.
    a zero layer's weight is its input times the upstream gradient, which is non-zero).
    """


class PositionalEmbedding(nn.Module):
    """Learned absolute position per token, added: (B, T, W) -> (B, T, W)."""

    def __init__(self, tokens: int, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(1, tokens, width))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.weight


class RelativePositionBias(nn.Module):
    """Learned attention bias per head and periodic token offset: () -> (H, T, T).

    ``bias[h, i, j] = weight[h, (j - i) mod T]`` depends only on how far token j lies from token
    i around the periodic domain, so attention stays equivariant to cyclic token shifts (the
    translation symmetry of a periodic PDE) while it learns which neighbours matter. Zero at init.
    """

    def __init__(self, tokens: int, heads: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(heads, tokens))

    def forward(self) -> torch.Tensor:
        tokens = self.weight.shape[1]
        index = torch.arange(tokens, device=self.weight.device)
        offsets = (index[None, :] - index[:, None]) % tokens  # (T, T): j - i around the circle
        return self.weight[:, offsets]


class SpectralConv1d(nn.Module):
    """Channel mixing of the lowest ``modes`` rfft modes: (B, C_in, X) -> (B, C_out, X).

    ``weight`` (C_in, C_out, modes, 2) holds one complex matrix per kept mode as (real, imag);
    every higher mode is dropped. Orthonormal FFTs keep the gain independent of X. The input is
    real, so the imaginary part of the mode-0 weights never reaches the output (as in every FNO).
    """

    def __init__(self, c_in: int, c_out: int, modes: int):
        super().__init__()
        self.modes = modes
        self.weight = nn.Parameter(torch.empty(c_in, c_out, modes, 2))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        points = h.shape[-1]
        if self.modes > points // 2 + 1:
            raise ValueError(f"{self.modes} modes need at least {2 * (self.modes - 1)} points")
        spectrum = torch.fft.rfft(h, dim=-1, norm="ortho")[..., : self.modes]  # (B, C_in, modes)
        mixed = torch.einsum("bim,iom->bom", spectrum, torch.view_as_complex(self.weight))
        return torch.fft.irfft(mixed, n=points, dim=-1, norm="ortho")  # zero-pads higher modes


class CondEmbedding(nn.Module):
    """Physical conditioning (B, 2) = (dt, nu) per sample -> (B, W).

    Both are positive scales, so the MLP sees (log dt, log nu): equal ratios, equal steps.
    """

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.net(torch.log(cond))


class NoiseEmbedding(nn.Module):
    """Noise level ``c_noise`` (B,) -> (B, W) through fixed sinusoidal features and an MLP."""

    def __init__(self, width: int):
        super().__init__()
        self.half = max(width // 2, 1)
        self.net = nn.Sequential(
            nn.Linear(2 * self.half, width), nn.SiLU(), nn.Linear(width, width)
        )

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        freqs = torch.exp(
            torch.linspace(0.0, math.log(NOISE_MAX_FREQ), self.half, device=c_noise.device)
        )
        angle = c_noise[:, None] * freqs  # (B, half)
        return self.net(torch.cat([torch.cos(angle), torch.sin(angle)], dim=1))


def modulate(h: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: (B, T, W) normalised activations, (B, 1, W) shift and scale; identity at zero."""
    return h * (1 + scale) + shift


def silu_chunks(linear: nn.Linear, c: torch.Tensor, n: int) -> tuple[torch.Tensor, ...]:
    """Split ``linear(silu(c))`` (B, n*W) into ``n`` tensors of shape (B, 1, W)."""
    return linear(F.silu(c)).unsqueeze(1).chunk(n, dim=2)


def init_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """Initialise every parameter of ``module`` from ``generator`` (in module registration order).

    Linear/conv weights: LeCun normal (std 1/sqrt(fan_in)), biases zero; ZeroLinear and
    relative position biases: zero;
    norms: one/zero; positional embeddings: normal(0, POSITION_STD); spectral convolutions:
    complex LeCun normal. Unknown owners raise.
    """
    for m in module.modules():
        if not list(m.parameters(recurse=False)):
            continue
        with torch.no_grad():
            _init_one(m, generator)


def _init_one(m: nn.Module, generator: torch.Generator) -> None:
    if isinstance(m, (ZeroLinear, RelativePositionBias)):
        for p in m.parameters(recurse=False):
            p.zero_()
    elif isinstance(m, (nn.Linear, nn.Conv1d)):
        fan_in = m.weight[0].numel()
        nn.init.normal_(m.weight, 0.0, fan_in**-0.5, generator=generator)
        if m.bias is not None:
            m.bias.zero_()
    elif isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
        m.weight.fill_(1.0)
        m.bias.zero_()
    elif isinstance(m, PositionalEmbedding):
        nn.init.normal_(m.weight, 0.0, POSITION_STD, generator=generator)
    elif isinstance(m, SpectralConv1d):
        # Complex LeCun normal: E|w|^2 = 1/C_in, so a kept mode keeps its scale on average.
        nn.init.normal_(m.weight, 0.0, (2 * m.weight.shape[0]) ** -0.5, generator=generator)
    else:
        raise TypeError(f"no initialisation rule for parameters of {type(m).__name__}")


def materialise(module: nn.Module, generator: torch.Generator) -> None:
    """Allocate a meta-built ``module`` on the CPU in float32 and initialise it from ``generator``.

    Call it before registering buffers: ``to_empty`` would leave them uninitialised.
    """
    if any(True for _ in module.buffers()):
        raise RuntimeError("register buffers after materialise(); to_empty() would wipe them")
    module.to_empty(device="cpu")
    module.to(torch.float32)
    init_parameters(module, generator)
