"""Patch autoencoder: shapes, config checks, token-shift equivariance, exact invertibility."""

from dataclasses import replace

import numpy as np
import pytest
import scipy.fft
import torch

from tests.models.conftest import AE_CFG, POINTS, TOKENS, fit_reconstruction, gen
from tests.models.test_autoencoder import smooth_periodic
from ups.checks import InvalidValue
from ups.models.patch_autoencoder import PatchAutoencoder

PATCH = POINTS // TOKENS
CFG = replace(AE_CFG, kind="patch", latent_dim=PATCH)


def patch_autoencoder(seed: int = 0) -> PatchAutoencoder:
    return PatchAutoencoder(CFG, POINTS, generator=gen(seed))


def test_shapes_round_trip():
    ae = patch_autoencoder()
    u = smooth_periodic(3, 0)
    assert ae.encode(u).shape == (3, TOKENS, PATCH)
    assert ae(u).shape == (3, POINTS)


def test_token_holds_its_own_points():
    # Changing the points of one patch changes that token's latent and no other.
    ae = patch_autoencoder()
    u = smooth_periodic(1, 1)
    bumped = u.clone()
    bumped[0, PATCH : 2 * PATCH] += 1.0
    changed = (ae.encode(bumped) != ae.encode(u)).any(dim=-1)[0]
    assert changed.tolist() == [t == 1 for t in range(TOKENS)]


@torch.no_grad()
def test_shift_by_one_patch_shifts_the_latent_by_one_token():
    ae = patch_autoencoder()
    u = torch.randn(3, POINTS, generator=gen(2))
    z = ae.encode(u)
    torch.testing.assert_close(ae.encode(torch.roll(u, PATCH, dims=1)), torch.roll(z, 1, dims=1))
    torch.testing.assert_close(
        ae.decode(torch.roll(z, 1, dims=1)), torch.roll(ae.decode(z), PATCH, dims=1)
    )


def test_points_must_be_a_multiple_of_tokens():
    with pytest.raises(ValueError, match="multiple"):
        PatchAutoencoder(CFG, POINTS + 1, generator=gen(0))


def test_encode_rejects_wrong_grid_size():
    with pytest.raises(ValueError, match="grid points"):
        patch_autoencoder().encode(torch.zeros(2, POINTS // 2))


def test_unknown_kind_names_the_key():
    with pytest.raises(InvalidValue, match="kind"):
        PatchAutoencoder(replace(CFG, kind="fourier"), POINTS, generator=gen(0))


def test_basis_is_orthonormal_and_a_square_one_inverts_exactly():
    ae = patch_autoencoder()
    with torch.no_grad():
        basis = ae.basis()
        torch.testing.assert_close(basis @ basis.T, torch.eye(PATCH), atol=1e-6, rtol=0)
        u = torch.randn(16, POINTS, generator=gen(3))
        torch.testing.assert_close(ae(u), u, atol=1e-5, rtol=0)


def test_latent_dim_above_the_patch_size_names_the_key():
    with pytest.raises(InvalidValue, match="latent_dim"):
        PatchAutoencoder(replace(CFG, latent_dim=PATCH + 1), POINTS, generator=gen(0))


def test_training_finds_the_subspace_the_patches_live_in():
    # Every patch lies in one fixed 3-dimensional subspace of R^8: a 3-dimensional basis can
    # only reconstruct it once training has rotated the random initial basis onto it.
    dim = 3
    ae = PatchAutoencoder(replace(CFG, latent_dim=dim), POINTS, generator=gen(0))
    subspace = torch.linalg.qr(torch.randn(PATCH, dim, generator=gen(5))).Q  # (P, dim)

    def patches_in_subspace(batch: int, seed: int) -> torch.Tensor:
        return (torch.randn(batch, TOKENS, dim, generator=gen(seed)) @ subspace.T).flatten(1)

    def error(u: torch.Tensor) -> float:
        with torch.no_grad():
            return (torch.mean((ae(u) - u) ** 2) / torch.mean(u**2)).item()

    held_out = patches_in_subspace(16, 4)
    before = error(held_out)
    fit_reconstruction(ae, patches_in_subspace(64, 3), lr=1e-2, steps=400)
    assert before > 0.1
    assert error(held_out) < 1e-4


def test_dct_init_is_the_orthonormal_dct_and_the_same_for_every_seed():
    cfg = replace(CFG, init="dct")
    first = PatchAutoencoder(cfg, POINTS, generator=gen(0)).basis().detach()
    second = PatchAutoencoder(cfg, POINTS, generator=gen(1)).basis().detach()
    expected = torch.as_tensor(
        scipy.fft.dct(np.eye(PATCH), norm="ortho", axis=0), dtype=torch.float32
    )
    torch.testing.assert_close(first, expected, atol=1e-6, rtol=0)
    assert torch.equal(first, second)
    random_bases = [patch_autoencoder(seed).basis().detach() for seed in (0, 1)]
    assert not torch.allclose(*random_bases, atol=1e-2)


def test_dct_init_codes_a_constant_field_in_its_first_coordinate_only():
    ae = PatchAutoencoder(replace(CFG, init="dct"), POINTS, generator=gen(0))
    with torch.no_grad():
        z = ae.encode(torch.full((2, POINTS), 0.5))  # (B, T, D)
    torch.testing.assert_close(z[..., 0], torch.full((2, TOKENS), 0.5 * PATCH**0.5))
    assert z[..., 1:].abs().max() < 1e-6


def test_dct_init_with_fewer_rows_keeps_the_lowest_frequencies():
    ae = PatchAutoencoder(replace(CFG, init="dct", latent_dim=3), POINTS, generator=gen(0))
    expected = scipy.fft.dct(np.eye(PATCH), norm="ortho", axis=0)[:3]
    np.testing.assert_allclose(ae.basis().detach().numpy(), expected, atol=1e-6)


def test_dct_init_of_a_conv_autoencoder_names_the_key():
    with pytest.raises(InvalidValue, match="init"):
        replace(AE_CFG, kind="conv", init="dct").validate()
    with pytest.raises(InvalidValue, match="init"):
        replace(CFG, init="identity").validate()
