"""Periodic conv autoencoder: shapes, config checks, circular shift equivariance, trainability."""

import math
from dataclasses import replace

import pytest
import torch

from tests.models.conftest import (
    AE_CFG,
    DIM,
    LEVELS,
    POINTS,
    TOKENS,
    autoencoder,
    fit_reconstruction,
    gen,
)
from ups.checks import InvalidValue
from ups.models.autoencoder import Autoencoder


def smooth_periodic(batch: int, seed: int) -> torch.Tensor:
    """Random sums of the first three Fourier modes on the periodic grid, (B, POINTS)."""
    g = gen(seed)
    x = torch.arange(POINTS) / POINTS
    amp = torch.randn(batch, 3, 1, generator=g)
    phase = 2 * math.pi * torch.rand(batch, 3, 1, generator=g)
    k = torch.arange(1, 4)[None, :, None]
    return (amp * torch.sin(2 * math.pi * k * x + phase)).sum(dim=1)


def test_shapes_round_trip():
    ae = autoencoder()
    u = smooth_periodic(3, 0)
    z = ae.encode(u)
    assert z.shape == (3, TOKENS, DIM)
    assert ae.decode(z).shape == (3, POINTS)
    assert ae(u).shape == (3, POINTS)


def test_no_downsampling_when_points_equal_tokens():
    ae = Autoencoder(AE_CFG, TOKENS, generator=gen(0))
    assert ae(torch.zeros(2, TOKENS)).shape == (2, TOKENS)


@pytest.mark.parametrize(
    "field, value",
    [("kernel", 4), ("kernel", 0), ("latent_tokens", 0), ("latent_dim", 0), ("channels", 0)],
)
def test_bad_config_raises(field, value):
    cfg = replace(AE_CFG, **{field: value})
    with pytest.raises(InvalidValue, match=field):
        Autoencoder(cfg, POINTS, generator=gen(0))


@pytest.mark.parametrize("points", [24, 36, 2, 33])
def test_points_must_be_tokens_times_power_of_two(points):
    with pytest.raises(ValueError, match="power of two"):
        Autoencoder(AE_CFG, points, generator=gen(0))


def test_encode_rejects_wrong_grid_size():
    with pytest.raises(ValueError, match="grid points"):
        autoencoder().encode(torch.zeros(2, POINTS // 2))


def test_encode_is_deterministic():
    ae = autoencoder()
    u = smooth_periodic(4, 1)
    assert torch.equal(ae.encode(u), ae.encode(u.clone()))


def test_batch_elements_are_independent():
    # No batch statistics: a sample's latent does not depend on what else is in the batch.
    ae = autoencoder()
    u = smooth_periodic(4, 1)
    torch.testing.assert_close(ae.encode(u)[:1], ae.encode(u[:1]))


@torch.no_grad()
def test_circular_shift_by_one_token_shifts_the_latent_by_one_token():
    # Circular padding + stride 2 per level: X = T * 2**levels, so shifting the periodic grid by
    # 2**levels points is shifting the latent by exactly one token (and back through the decoder).
    ae = autoencoder()
    u = torch.randn(3, POINTS, generator=gen(2))
    z = ae.encode(u)
    shift = 2**LEVELS
    torch.testing.assert_close(ae.encode(torch.roll(u, shift, dims=1)), torch.roll(z, 1, dims=1))
    torch.testing.assert_close(
        ae.decode(torch.roll(z, 1, dims=1)), torch.roll(ae.decode(z), shift, 1)
    )
    # A sub-token shift is not a token permutation: the check above is not vacuous.
    assert not torch.allclose(ae.encode(torch.roll(u, 1, dims=1)), z, atol=1e-3)


def test_a_few_adam_steps_reduce_reconstruction_error():
    ae = autoencoder()
    u = smooth_periodic(16, 3)
    with torch.no_grad():
        before = torch.mean((ae(u) - u) ** 2).item()
    fit_reconstruction(ae, u, lr=3e-3, steps=60)
    with torch.no_grad():
        after = torch.mean((ae(u) - u) ** 2).item()
    assert after < 0.1 * before
