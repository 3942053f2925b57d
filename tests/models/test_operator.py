"""Latent operator z_next = z + F(z, cond): identity at init, conditioning, position, amplitude,
gradients."""

from dataclasses import replace

import pytest
import torch

from tests.models.conftest import DIM, OP_CFG, TOKENS, conds, gen, latents, operator, perturb
from ups.checks import InvalidValue
from ups.models.amplitude import AMPLITUDE_CEILING, AMPLITUDE_FLOOR, amplitude_split
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


RELATIVE = replace(OP_CFG, position="relative")


def _relative_operator(seed: int = 0) -> LatentOperator:
    return perturb(LatentOperator(RELATIVE, TOKENS, DIM, generator=gen(seed)), 7)


@torch.no_grad()
@pytest.mark.parametrize("shift", [1, 3])
def test_relative_positions_commute_with_cyclic_token_shifts(shift):
    op = _relative_operator()
    z, cond = latents(5, 1), conds(5, 2)
    out = op(z, cond)
    assert not torch.allclose(out, z, atol=1e-3)
    torch.testing.assert_close(op(torch.roll(z, shift, dims=1), cond), torch.roll(out, shift, 1))
    # Control: absolute positions break the same symmetry.
    absolute = perturb(operator(), 7)
    assert not torch.allclose(
        absolute(torch.roll(z, shift, dims=1), cond), torch.roll(absolute(z, cond), shift, 1)
    )


@torch.no_grad()
def test_relative_positions_still_tell_neighbours_apart():
    op = _relative_operator()
    z, cond = latents(5, 1), conds(5, 2)
    mirror = torch.tensor([0, 3, 2, 1])  # keeps token 0, reverses the offsets around it
    assert not torch.allclose(op(z[:, mirror], cond), op(z, cond)[:, mirror], atol=1e-4)
    # Control: with the offset biases zeroed, attention sees content only and any permutation
    # commutes with the model, so the difference above is the biases' doing.
    for block in op.backbone.blocks:
        block.attn.position.weight.zero_()
    torch.testing.assert_close(op(z[:, mirror], cond), op(z, cond)[:, mirror])


PER_SAMPLE = replace(RELATIVE, amplitude="per_sample")


def _per_sample_operator(seed: int = 0) -> LatentOperator:
    return perturb(LatentOperator(PER_SAMPLE, TOKENS, DIM, generator=gen(seed)), 7)


def test_amplitude_split_reassembles_and_ignores_constant_offsets():
    z = latents(5, 1)
    mean, amplitude, shape = amplitude_split(z)
    torch.testing.assert_close(mean + amplitude * shape, z)
    torch.testing.assert_close(shape.square().mean(dim=(1, 2)), torch.ones(5))
    offset = latents(5, 2)[:, :1]  # one vector in every token: a constant field's latents
    _, shifted_amplitude, shifted_shape = amplitude_split(z + offset)
    torch.testing.assert_close(shifted_amplitude, amplitude)
    torch.testing.assert_close(shifted_shape, shape)


@torch.no_grad()
def test_per_sample_update_scales_with_the_amplitude():
    op = _per_sample_operator().double()  # float64: the 1/1000 field is not lost in rounding
    z, cond = latents(5, 1).double(), conds(5, 2).double()
    mean, _, _ = amplitude_split(z)

    def update(scale: float) -> torch.Tensor:
        small = mean + scale * (z - mean)
        return op(small, cond) - small

    # Same shape at 1/1000 of the amplitude: the step is not 1000 times too large for it...
    assert not torch.allclose(update(1e-3) * 1e3, update(1.0), atol=1e-3)  # log a is an input
    # ...and with what sees the amplitude removed (its log a conditioning) it is exactly the
    # scaled step: the input, mean + shape, is the same at both amplitudes.
    for p in op.amplitude_embed.parameters():
        p.zero_()
    torch.testing.assert_close(update(1e-3) * 1e3, update(1.0))
    # Control: with one scale for every sample the small field gets an absolute-sized step.
    fixed = _relative_operator().double()
    small = mean + 1e-3 * (z - mean)
    assert (fixed(small, cond) - small).abs().max() > 10 * 1e-3 * update(1.0).abs().max()


@torch.no_grad()
def test_capped_steps_a_field_above_the_ceiling_as_the_fixed_operator_does():
    fixed = _relative_operator().double()
    capped = LatentOperator(replace(RELATIVE, amplitude="capped"), TOKENS, DIM, generator=gen(1))
    capped = capped.double()
    capped.load_state_dict(fixed.state_dict(), strict=False)  # all but its amplitude_embed
    for p in capped.amplitude_embed.parameters():
        p.zero_()  # its log a conditioning, a constant for every field above the ceiling
    z, cond = latents(5, 1).double(), conds(5, 2).double()
    assert (amplitude_split(z)[1] > AMPLITUDE_CEILING).all()
    torch.testing.assert_close(capped(z, cond), fixed(z, cond))
    small = 0.01 * z  # below the ceiling: magnified, so no longer the fixed step
    assert not torch.allclose(capped(small, cond), fixed(small, cond), atol=1e-6)


@torch.no_grad()
def test_per_sample_leaves_a_constant_field_almost_still():
    op = _per_sample_operator()
    flat = latents(5, 1)[:, :1].expand(5, TOKENS, DIM)
    step = op(flat, conds(5, 2)) - flat
    assert step.abs().max() < 100 * AMPLITUDE_FLOOR
    assert not torch.allclose(op(latents(5, 1), conds(5, 2)), latents(5, 1), atol=1e-3)


@torch.no_grad()
def test_per_sample_commutes_with_cyclic_token_shifts():
    op = _per_sample_operator()
    z, cond = latents(5, 1), conds(5, 2)
    torch.testing.assert_close(op(torch.roll(z, 1, dims=1), cond), torch.roll(op(z, cond), 1, 1))


@pytest.mark.parametrize(
    "cfg",
    [OP_CFG, RELATIVE, PER_SAMPLE, replace(RELATIVE, amplitude="capped")],
    ids=["absolute", "relative", "per_sample", "capped"],
)
def test_gradient_reaches_every_parameter(cfg):
    op = perturb(LatentOperator(cfg, TOKENS, DIM, generator=gen(0)), 7)
    z, cond = latents(5, 1), conds(5, 2)
    if cfg.amplitude == "capped":
        z = 0.1 * AMPLITUDE_CEILING * z  # below the ceiling: above it the unit is 1, log 0
    target = latents(5, 3)
    torch.mean((op(z, cond) - target) ** 2).backward()
    for name, p in op.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_wrong_token_count_raises():
    with pytest.raises(ValueError, match="tokens"):
        operator()(torch.zeros(2, TOKENS + 1, DIM), conds(2, 0))


@pytest.mark.parametrize(
    "field, value",
    [
        ("width", 15),
        ("depth", 0),
        ("heads", 0),
        ("mlp_ratio", 0),
        ("position", "rotary"),
        ("amplitude", "frame"),
    ],
)
def test_bad_config_raises(field, value):
    cfg = replace(OP_CFG, **{field: value})
    with pytest.raises(InvalidValue, match=field):
        LatentOperator(cfg, TOKENS, DIM, generator=gen(0))
