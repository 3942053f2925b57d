"""Exact mass conservation of a latent step: the weights, the projection, its gradient path."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from tests.models.conftest import AE_CFG, OP_CFG, POINTS, TOKENS, gen
from ups.models.autoencoder import Autoencoder
from ups.models.conservation import (
    MassConserving,
    MassProjection,
    conserving,
    mass_weights,
    projection_of,
)
from ups.models.ensemble import MeanEnsemble
from ups.models.operator import LatentOperator
from ups.models.patch_autoencoder import PatchAutoencoder

PATCH = POINTS // TOKENS


def patch_autoencoder(latent_dim: int = PATCH, init: str = "random") -> PatchAutoencoder:
    cfg = replace(AE_CFG, kind="patch", latent_dim=latent_dim, init=init)
    return PatchAutoencoder(cfg, POINTS, generator=gen(3))


class Drift(nn.Module):
    """A step that adds a learnable constant to every latent coordinate (moves the mass)."""

    def __init__(self, dim: int):
        super().__init__()
        self.shift = nn.Parameter(torch.linspace(0.1, 0.9, dim))

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return 1.5 * z + self.shift


def grid_mean(ae: PatchAutoencoder, z: torch.Tensor) -> torch.Tensor:
    return ae.decode(z.reshape(-1, TOKENS, z.shape[-1])).mean(dim=-1).reshape(z.shape[:-2])


@pytest.mark.parametrize(
    "latent_dim,init", [(PATCH, "dct"), (PATCH, "random"), (PATCH // 2, "random")]
)
def test_weights_give_the_decoded_grid_mean(latent_dim, init):
    ae = patch_autoencoder(latent_dim, init)
    z = torch.randn(5, TOKENS, latent_dim, generator=gen(0))
    torch.testing.assert_close((z * mass_weights(ae)).sum(dim=(-2, -1)), grid_mean(ae, z))


def test_dct_weights_read_the_first_coefficient_only():
    w = mass_weights(patch_autoencoder(init="dct"))
    expected = torch.zeros(TOKENS, PATCH)
    expected[:, 0] = PATCH**0.5 / POINTS  # DCT row 0 is the patch mean times sqrt(P)
    torch.testing.assert_close(w, expected)


def test_weights_refuse_a_nonlinear_decoder():
    with pytest.raises(TypeError, match="linear in the latent.*conv"):
        mass_weights(Autoencoder(AE_CFG, POINTS, generator=gen(0)))


@pytest.mark.parametrize("latent_dim", [PATCH, PATCH // 2])
def test_step_keeps_the_mass_of_its_input(latent_dim):
    ae = patch_autoencoder(latent_dim)
    step = MassConserving(Drift(latent_dim), MassProjection(mass_weights(ae)))
    z = torch.randn(6, TOKENS, latent_dim, generator=gen(1))
    with torch.no_grad():
        out, raw = step(z, torch.zeros(6, 2)), step.step(z, torch.zeros(6, 2))
    assert (grid_mean(ae, raw) - grid_mean(ae, z)).abs().min() > 0.02  # the raw step drifts
    torch.testing.assert_close(grid_mean(ae, out), grid_mean(ae, z), atol=1e-6, rtol=0)


def test_full_basis_projection_subtracts_a_constant_from_the_grid():
    # With latent_dim = patch size the smallest latent change is a uniform shift of the field.
    ae = patch_autoencoder()
    step = MassConserving(Drift(PATCH), MassProjection(mass_weights(ae)))
    z = torch.randn(4, TOKENS, PATCH, generator=gen(2))
    with torch.no_grad():
        change = ae.decode(step(z, torch.zeros(4, 2))) - ae.decode(step.step(z, torch.zeros(4, 2)))
    torch.testing.assert_close(change, change[:, :1].expand_as(change), atol=1e-5, rtol=0)


def test_per_member_input_of_an_ensemble_conserves_each_member():
    ae = patch_autoencoder()
    projection = MassProjection(mass_weights(ae))
    members = [MassConserving(Drift(PATCH), projection), MassConserving(Drift(PATCH), projection)]
    ensemble = MeanEnsemble(members)
    z = torch.randn(3, 2, TOKENS, PATCH, generator=gen(4))
    with torch.no_grad():
        out = ensemble(z, torch.zeros(3, 2))
        torch.testing.assert_close(grid_mean(ae, out), grid_mean(ae, z), atol=1e-6, rtol=0)
        mean_step = ensemble(z[:, 0], torch.zeros(3, 2))
    torch.testing.assert_close(grid_mean(ae, mean_step), grid_mean(ae, z[:, 0]), atol=1e-6, rtol=0)


def test_loss_reaches_the_wrapped_operators_weights():
    ae = patch_autoencoder(init="dct")
    op = LatentOperator(OP_CFG, TOKENS, PATCH, generator=gen(5))
    with torch.no_grad():  # a fresh operator is the identity: give its output layer a value
        for p in op.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen(6)))
    step = MassConserving(op, MassProjection(mass_weights(ae)))
    z = torch.randn(4, TOKENS, PATCH, generator=gen(7))
    step(z, torch.full((4, 2), 0.05)).square().mean().backward()
    grads = [p.grad for p in op.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert list(step.state_dict()) == [f"step.{k}" for k in op.state_dict()]  # no AE weights


def test_residual_is_changed_so_the_corrected_state_keeps_the_mass():
    ae = patch_autoencoder()
    projection = MassProjection(mass_weights(ae))
    z, zhat, r = torch.randn(3, 4, TOKENS, PATCH, generator=gen(8))
    fixed = projection.residual(zhat, r, z)
    torch.testing.assert_close(grid_mean(ae, zhat + fixed), grid_mean(ae, z), atol=1e-6, rtol=0)
    # Only the mass moved: the change is along the weights.
    change = (fixed - r).flatten(1)
    w = projection.weights.flatten()
    torch.testing.assert_close(change, (change @ w)[:, None] * w / w.square().sum())


def test_conserving_corrector_keeps_each_corrected_state_at_its_input_mass():
    ae = patch_autoencoder()
    projection = MassProjection(mass_weights(ae))
    z, zhat = torch.randn(2, 5, TOKENS, PATCH, generator=gen(9))

    def corrector(zhat, cond, z):
        return torch.ones_like(zhat)  # moves the mass of every state

    corrected = zhat + conserving(corrector, projection)(zhat, torch.zeros(5, 2), z)
    torch.testing.assert_close(grid_mean(ae, corrected), grid_mean(ae, z), atol=1e-6, rtol=0)
    assert conserving(corrector, None) is corrector


def test_projection_of_finds_the_members_projection_or_none():
    projection = MassProjection(mass_weights(patch_autoencoder()))
    members = [MassConserving(Drift(PATCH), projection), MassConserving(Drift(PATCH), projection)]
    assert projection_of(MeanEnsemble(members)) is projection
    assert projection_of(members[0]) is projection
    assert projection_of(MeanEnsemble([Drift(PATCH), Drift(PATCH)])) is None
