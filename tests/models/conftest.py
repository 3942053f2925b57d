"""Tiny models, a synthetic conditional residual problem, and a trained teacher for the model tests.

Every random draw comes from an explicit seeded ``torch.Generator``; the global RNG is never read.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from ups.models.autoencoder import Autoencoder
from ups.models.configs import AutoencoderConfig, DiffusionConfig, OperatorConfig
from ups.models.consistency import ConsistencyStudent
from ups.models.diffusion import Denoiser, diffusion_loss
from ups.models.operator import LatentOperator

TOKENS, DIM, POINTS = 4, 4, 32  # 32 points = 4 tokens * 2**3: three halvings
LEVELS = 3
AE_CFG = AutoencoderConfig(latent_tokens=TOKENS, latent_dim=DIM, channels=8, kernel=3)
OP_CFG = OperatorConfig(width=16, depth=2, heads=2, mlp_ratio=2)
DIFF_CFG = DiffusionConfig(width=16, depth=1, heads=2, mlp_ratio=2, sample_steps=8)
TEACHER_STEPS = 300  # AdamW steps on the synthetic problem (well under a second)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def autoencoder(seed: int = 0) -> Autoencoder:
    return Autoencoder(AE_CFG, POINTS, generator=gen(seed))


def fit_reconstruction(ae: torch.nn.Module, u: torch.Tensor, lr: float, steps: int) -> None:
    """``steps`` full-batch Adam steps on the reconstruction MSE of grids ``u`` (B, X)."""
    opt = torch.optim.Adam(ae.parameters(), lr=lr)
    for _ in range(steps):
        loss = torch.mean((ae(u) - u) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()


def operator(seed: int = 0) -> LatentOperator:
    return LatentOperator(OP_CFG, TOKENS, DIM, generator=gen(seed))


def denoiser(seed: int = 0, sigma_data: float | None = None) -> Denoiser:
    model = Denoiser(DIFF_CFG, TOKENS, DIM, generator=gen(seed))
    if sigma_data is not None:
        model.set_sigma_data(sigma_data)
    return model


def student(seed: int = 0) -> ConsistencyStudent:
    return ConsistencyStudent(DIFF_CFG, TOKENS, DIM, generator=gen(seed))


def perturb(model: torch.nn.Module, seed: int, scale: float = 0.1) -> torch.nn.Module:
    """Add seeded noise to every parameter, so the zero-initialised (adaLN-Zero) layers are not."""
    g = gen(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return model


def latents(batch: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, TOKENS, DIM, generator=gen(seed))


def conds(batch: int, seed: int) -> torch.Tensor:
    """Positive physical (dt, nu), log-uniform over two decades each."""
    return torch.exp(torch.empty(batch, 2).uniform_(-6.0, -1.5, generator=gen(seed)))


# --- synthetic conditional problem: the residual is a deterministic function of zhat -----------
PATTERN = 0.3 * torch.randn(TOKENS, DIM, generator=gen(99))


def problem(batch: int, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    """(r, zhat, cond) with r = 0.5 * zhat + a fixed pattern and zhat ~ N(0, 1)."""
    zhat = torch.randn(batch, TOKENS, DIM, generator=g)
    return 0.5 * zhat + PATTERN, zhat, torch.full((batch, 2), 0.01)


def problem_sigma_data() -> float:
    return problem(4096, gen(5))[0].std().item()


def train_denoiser(model: Denoiser, steps: int, seed: int) -> Denoiser:
    g = gen(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = diffusion_loss(model, *problem(64, g), g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


@contextlib.contextmanager
def one_thread():
    # The models are tiny: a second OpenMP thread only adds synchronisation, and on a busy
    # 2-core machine spin-waiting for it made training ~10x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="session")
def teacher_state() -> dict[str, torch.Tensor]:
    """State dict of a denoiser trained on the synthetic problem (load it into a fresh model)."""
    with one_thread():
        model = train_denoiser(denoiser(0, problem_sigma_data()), TEACHER_STEPS, seed=2)
    return {k: v.clone() for k, v in model.state_dict().items()}


def trained_teacher(state: dict[str, torch.Tensor]) -> Denoiser:
    model = denoiser(0)
    model.load_state_dict(state)
    return model.requires_grad_(False)
