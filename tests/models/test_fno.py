"""FNO-1D baseline: spectral truncation, construction, identity start, conditioning, gradients."""

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from tests.models.conftest import conds, gen, perturb
from ups.checks import InvalidValue
from ups.models.configs import FNOConfig
from ups.models.fno import FNO1d
from ups.models.layers import SpectralConv1d, init_parameters

POINTS = 32
CFG = FNOConfig(modes=6, width=8, depth=2)


def fno(seed: int = 0) -> FNO1d:
    return FNO1d(CFG, POINTS, generator=gen(seed))


def fields(batch: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, POINTS, generator=gen(seed))


def spectral(c_in: int, c_out: int, modes: int, seed: int = 0) -> SpectralConv1d:
    layer = SpectralConv1d(c_in, c_out, modes)
    init_parameters(layer, gen(seed))
    return layer


def wave(k: int, phase: float = 0.0) -> torch.Tensor:
    """(POINTS,) cos(2 pi k x + phase) on the grid x = i / POINTS."""
    x = torch.arange(POINTS, dtype=torch.float32) / POINTS
    return torch.cos(2 * math.pi * k * x + phase)


def test_output_shape_and_fresh_model_is_exactly_the_identity():
    model = fno()
    u, cond = fields(5, 1), conds(5, 2)
    out = model(u, cond)
    assert out.shape == (5, POINTS)
    assert torch.equal(out, u)
    out.sum().backward()  # the zero head still passes gradient to itself
    assert model.head.weight.grad.abs().sum() > 0


@torch.no_grad()
def test_a_kept_mode_is_multiplied_by_its_complex_weight():
    layer = spectral(1, 1, modes=4, seed=3)
    k, phase = 3, 0.4
    out = layer(wave(k, phase).view(1, 1, POINTS)).view(POINTS)
    w = torch.view_as_complex(layer.weight[0, 0, k])  # cos(kx + p) -> |w| cos(kx + p + arg w)
    torch.testing.assert_close(out, w.abs() * wave(k, phase + float(w.angle())))


@pytest.mark.parametrize("k", [4, 5, 9, POINTS // 2])
def test_modes_at_or_above_the_cut_pass_the_spectral_path_as_zero(k):
    layer = spectral(3, 2, modes=4, seed=1)
    h = torch.stack([wave(k, 0.1 * c) for c in range(3)]).expand(2, 3, POINTS)
    out = layer(h)
    assert out.shape == (2, 2, POINTS)
    torch.testing.assert_close(out, torch.zeros_like(out), atol=1e-6, rtol=0)
    # Control: the same layer passes a kept mode.
    assert layer(wave(3).expand(1, 3, POINTS)).abs().max() > 1e-2


def test_spectral_init_is_complex_lecun_normal():
    layer = spectral(64, 32, modes=16)
    assert layer.weight.shape == (64, 32, 16, 2)
    assert layer.weight.std().item() == pytest.approx((2 * 64) ** -0.5, rel=0.05)


def test_every_tensor_is_materialised_float32_on_cpu_and_nothing_is_lazy():
    model = fno()
    for name, t in model.named_parameters():
        assert not t.is_meta and t.device.type == "cpu" and t.dtype == torch.float32, name
        assert torch.isfinite(t).all(), name
    assert not any(isinstance(m, nn.modules.lazy.LazyModuleMixin) for m in model.modules())


@pytest.mark.determinism
def test_same_seed_same_bits_other_seed_other_weights_global_rng_untouched():
    before = torch.get_rng_state()
    a, b, c = (fno(seed).state_dict() for seed in (3, 3, 4))
    assert torch.equal(torch.get_rng_state(), before)
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@torch.no_grad()
def test_output_depends_on_cond_and_on_position():
    model = perturb(fno(), 7)
    u, cond = fields(5, 1), conds(5, 2)
    out = model(u, cond)
    assert not torch.allclose(out, u, atol=1e-3)
    assert not torch.allclose(model(u, cond * torch.tensor([2.0, 1.0])), out, atol=1e-4)
    assert not torch.allclose(model(u, cond * torch.tensor([1.0, 2.0])), out, atol=1e-4)
    # The grid channel is an input, so shifting u alone does not shift the output.
    shifted = model(torch.roll(u, 3, dims=1), cond)
    assert not torch.allclose(shifted, torch.roll(out, 3, dims=1), atol=1e-4)


def test_gradient_reaches_every_parameter():
    model = perturb(fno(), 7)
    u, cond, target = fields(5, 1), conds(5, 2), fields(5, 3)
    torch.mean((model(u, cond) - target) ** 2).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_wrong_point_count_raises():
    with pytest.raises(ValueError, match="grid points"):
        fno()(torch.zeros(2, POINTS + 2), conds(2, 0))


@pytest.mark.parametrize(
    "field, value", [("modes", 0), ("modes", POINTS // 2 + 1), ("width", 0), ("depth", 0)]
)
def test_bad_config_raises(field, value):
    with pytest.raises(InvalidValue, match=field):
        FNO1d(replace(CFG, **{field: value}), POINTS, generator=gen(0))


@pytest.mark.gpu
@torch.no_grad()
def test_cuda_matches_cpu():
    model = perturb(fno(), 7)
    u, cond = fields(5, 1), conds(5, 2)
    expected = model(u, cond)
    got = model.to("cuda")(u.cuda(), cond.cuda()).cpu()
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
