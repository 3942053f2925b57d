"""Shared layers and generator-driven initialisation; construction properties of every model."""

import pytest
import torch
from torch import nn

from tests.models.conftest import autoencoder, denoiser, gen, operator, student
from ups.models.layers import (
    POSITION_STD,
    CondEmbedding,
    NoiseEmbedding,
    PositionalEmbedding,
    RelativePositionBias,
    ZeroLinear,
    init_parameters,
    materialise,
    modulate,
    silu_chunks,
)

MODELS = {
    "autoencoder": autoencoder,
    "operator": operator,
    "denoiser": denoiser,
    "consistency_student": student,
}


@pytest.mark.parametrize("name", list(MODELS))
def test_every_tensor_is_materialised_float32_on_cpu(name):
    model = MODELS[name](0)
    tensors = dict(model.named_parameters()) | dict(model.named_buffers())
    assert tensors
    for tname, t in tensors.items():
        assert not t.is_meta, tname
        assert t.device.type == "cpu" and t.dtype == torch.float32, tname
        assert not isinstance(t, nn.parameter.UninitializedTensorMixin), tname
        assert torch.isfinite(t).all(), tname


@pytest.mark.parametrize("name", list(MODELS))
def test_no_lazy_modules(name):
    for m in MODELS[name](0).modules():
        assert not isinstance(m, nn.modules.lazy.LazyModuleMixin), type(m).__name__


@pytest.mark.determinism
@pytest.mark.parametrize("name", list(MODELS))
def test_same_seed_same_bits_different_seed_different_weights(name):
    a, b, c = (MODELS[name](seed).state_dict() for seed in (3, 3, 4))
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("name", list(MODELS))
def test_construction_never_touches_the_global_rng(name):
    before = torch.get_rng_state()
    MODELS[name](0)
    assert torch.equal(torch.get_rng_state(), before)


def test_init_rules():
    with torch.device("meta"):
        model = nn.Sequential(
            nn.Linear(400, 300), ZeroLinear(300, 8), nn.LayerNorm(8), PositionalEmbedding(64, 50)
        )
    materialise(model, gen(0))
    linear, zero, norm, pos = model
    # LeCun normal: std 1/sqrt(fan_in), zero bias
    assert linear.weight.std().item() == pytest.approx(400**-0.5, rel=0.05)
    assert torch.count_nonzero(linear.bias) == 0
    assert torch.count_nonzero(zero.weight) == 0 and torch.count_nonzero(zero.bias) == 0
    assert torch.equal(norm.weight, torch.ones(8)) and torch.count_nonzero(norm.bias) == 0
    assert pos.weight.std().item() == pytest.approx(POSITION_STD, rel=0.05)


def test_relative_position_bias_is_zero_at_init_and_depends_on_periodic_offset_only():
    with torch.device("meta"):
        bias = RelativePositionBias(5, 2)
    materialise(bias, gen(0))
    assert torch.count_nonzero(bias()) == 0
    with torch.no_grad():
        bias.weight.copy_(torch.arange(10.0).view(2, 5))
    table = bias()  # (heads, T, T)
    assert table.shape == (2, 5, 5)
    assert table[1, 0, 1] == 6.0  # head 1, one token to the right
    assert table[0, 4, 0] == 1.0  # wraps around: token 0 is one to the right of token 4
    assert table[0, 1, 0] == 4.0  # one to the left = four to the right on 5 tokens
    torch.testing.assert_close(table, torch.roll(table, (1, 1), dims=(1, 2)))


def test_init_overwrites_existing_values():
    layer = nn.Linear(4, 4)
    with torch.no_grad():
        layer.bias.fill_(7.0)
    init_parameters(layer, gen(0))
    assert torch.count_nonzero(layer.bias) == 0


def test_parameter_owner_without_rule_raises():
    with pytest.raises(TypeError, match="Embedding"):
        init_parameters(nn.Sequential(nn.Linear(2, 2), nn.Embedding(3, 2)), gen(0))


def test_materialise_refuses_buffers():
    with torch.device("meta"):
        model = nn.Linear(2, 2)
    model.register_buffer("scale", torch.ones(()))
    with pytest.raises(RuntimeError, match="buffers"):
        materialise(model, gen(0))


def test_modulate_is_identity_at_zero_and_affine_otherwise():
    h = torch.randn(2, 3, 4, generator=gen(0))
    zero = torch.zeros(2, 1, 4)
    assert torch.equal(modulate(h, zero, zero), h)
    shift, scale = torch.full((2, 1, 4), 0.5), torch.full((2, 1, 4), 1.0)
    torch.testing.assert_close(modulate(h, shift, scale), 2 * h + 0.5)


def test_silu_chunks_splits_into_broadcastable_pieces():
    linear = nn.Linear(8, 3 * 8)
    init_parameters(linear, gen(0))
    c = torch.randn(5, 8, generator=gen(1))
    chunks = silu_chunks(linear, c, 3)
    assert [x.shape for x in chunks] == [torch.Size([5, 1, 8])] * 3
    torch.testing.assert_close(torch.cat(chunks, dim=2).squeeze(1), linear(nn.functional.silu(c)))


def test_cond_embedding_sees_log_of_cond():
    emb = CondEmbedding(16)
    init_parameters(emb, gen(0))
    cond = torch.tensor([[1e-3, 1e-2], [0.5, 2.0]])
    torch.testing.assert_close(emb(cond), emb.net(torch.log(cond)))


def test_noise_embedding_shape_and_sensitivity():
    emb = NoiseEmbedding(16)
    init_parameters(emb, gen(0))
    out = emb(torch.tensor([-1.0, 0.0, 1.0]))
    assert out.shape == (3, 16)
    assert not torch.allclose(out[0], out[1]) and not torch.allclose(out[1], out[2])


def test_positional_embedding_adds_per_token_vector():
    pos = PositionalEmbedding(3, 4)
    init_parameters(pos, gen(0))
    h = torch.zeros(2, 3, 4)
    assert torch.equal(pos(h), pos.weight.expand(2, 3, 4))
