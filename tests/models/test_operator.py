"""Latent operator z_next = z + F(z, cond): identity at init, conditioning, position, gradients."""

from dataclasses import replace

import pytest
import torch

from tests.models.conftest import DIM, OP_CFG, TOKENS, conds, gen, latents, operator, perturb
from ups.checks import InvalidValue
from ups.models.operator import LatentOperator


def test_fresh_operator_is_exactly_the_identity():
    op = operator()
    z, cond = latents(5, 1), conds(5, 2)
    out = op(z, cond)
    assert torch.equal(out, z)
    out.sum().backward()  # the zero head still passes gradient to itself
    assert op.backbone.head.weight.grad.abs().sum() > 0


def test_perturbed_operator_is_not_the_identity():
    z, cond = latents(5, 1), conds(5, 2)
    assert not torch.allclose(perturb(operator(), 7)(z, cond), z, atol=1e-3)


@torch.no_grad()
def test_output_depends_on_cond():
    op = perturb(operator(), 7)
    z = latents(5, 1)
    cond = conds(5, 2)
    assert not torch.allclose(op(z, cond), op(z, cond * torch.tensor([2.0, 1.0])), atol=1e-4)
    assert not torch.allclose(op(z, cond), op(z, cond * torch.tensor([1.0, 2.0])), atol=1e-4)


@torch.no_grad()
def test_not_permutation_equivariant_because_of_positions():
    op = perturb(operator(), 7)
    z, cond = latents(5, 1), conds(5, 2)
    perm = torch.tensor([2, 0, 3, 1])
    assert not torch.allclose(op(z[:, perm], cond), op(z, cond)[:, perm], atol=1e-4)
    # Control: with a position-independent embedding the same model is equivariant, so the
    # difference above comes from the positional embedding and not from anything else.
    op.backbone.position.weight.copy_(op.backbone.position.weight.mean(dim=1, keepdim=True))
    torch.testing.assert_close(op(z[:, perm], cond), op(z, cond)[:, perm])


def test_gradient_reaches_every_parameter():
    op = perturb(operator(), 7)
    z, cond = latents(5, 1), conds(5, 2)
    target = latents(5, 3)
    torch.mean((op(z, cond) - target) ** 2).backward()
    for name, p in op.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_wrong_token_count_raises():
    with pytest.raises(ValueError, match="tokens"):
        operator()(torch.zeros(2, TOKENS + 1, DIM), conds(2, 0))


@pytest.mark.parametrize(
    "field, value", [("width", 15), ("depth", 0), ("heads", 0), ("mlp_ratio", 0)]
)
def test_bad_config_raises(field, value):
    cfg = replace(OP_CFG, **{field: value})
    with pytest.raises(InvalidValue, match=field):
        LatentOperator(cfg, TOKENS, DIM, generator=gen(0))
