"""Per-sample amplitude (ups.models.amplitude) in the corrector models: the residual of a field
at 1/1000 of the amplitude is modelled as finely as that of the full field."""

from dataclasses import replace

import pytest
import torch

from tests.models.conftest import DIFF_CFG, DIM, TOKENS, conds, gen, latents, perturb
from ups.models.amplitude import (
    AMPLITUDE_CEILING,
    AMPLITUDE_FLOOR,
    AMPLITUDE_LOSS_FLOOR,
    amplitude_loss_weights,
    amplitude_split,
    amplitude_tokens,
    magnified,
)
from ups.models.consistency import (
    ConsistencyStudent,
    consistency_distillation_loss,
    consistency_sample,
)
from ups.models.diffusion import Denoiser, diffusion_loss, sample

PER_SAMPLE = replace(DIFF_CFG, amplitude="per_sample")
SCALE = 1e-3


def _per_sample(cls=Denoiser, dtype=torch.float64):
    """A perturbed per-sample model; float64 unless it samples (the samplers draw float32
    noise), so the field at 1/1000 of the amplitude is not lost in rounding."""
    model = perturb(cls(PER_SAMPLE, TOKENS, DIM, generator=gen(0)), 7).to(dtype)
    model.set_sigma_data(0.5)
    return model


def _without_amplitude_conditioning(model):
    """Zero what sees the amplitude, the ``log a`` embedding and the input columns that read
    ``zhat`` itself beside its shape: what is left must be exactly scale-equivariant."""
    with torch.no_grad():
        for p in model.amplitude_embed.parameters():
            p.zero_()
        model.backbone.embed.weight[:, 2 * DIM :].zero_()
    return model


def _shrunk(zhat: torch.Tensor) -> torch.Tensor:
    """``zhat`` at SCALE of its amplitude about the same mean token."""
    mean, _, _ = amplitude_split(zhat)
    return mean + SCALE * (zhat - mean)


def _inputs(dtype=torch.float64):
    return latents(5, 1).to(dtype), conds(5, 2).to(dtype)


def _close_in_float32(small: torch.Tensor, full: torch.Tensor) -> None:
    """``small / SCALE == full`` up to float32 rounding of a 1/1000 deviation (~1e-4)."""
    torch.testing.assert_close(small / SCALE, full, rtol=1e-3, atol=1e-3 * full.abs().max())


def test_amplitude_tokens_are_shape_and_latents():
    z = latents(5, 1)
    tokens, amplitude = amplitude_tokens(z)
    _, same_amplitude, shape = amplitude_split(z)
    assert tokens.shape == (5, TOKENS, 2 * DIM)
    torch.testing.assert_close(tokens[..., :DIM], shape)
    assert torch.equal(tokens[..., DIM:], z)
    torch.testing.assert_close(amplitude, same_amplitude)


def test_magnified_keeps_large_fields_and_the_mean_and_enlarges_small_deviations():
    z = latents(5, 1)
    mean, amplitude, _ = amplitude_split(z)
    assert (amplitude > AMPLITUDE_CEILING).all()
    tokens, unit = magnified(z, AMPLITUDE_CEILING)
    torch.testing.assert_close(tokens, z)
    assert torch.equal(unit, torch.ones(5, 1, 1))
    small = mean + 1e-2 * (z - mean)
    tokens, unit = magnified(small, AMPLITUDE_CEILING)
    torch.testing.assert_close(unit, 1e-2 * amplitude / AMPLITUDE_CEILING)
    torch.testing.assert_close(tokens.mean(dim=1, keepdim=True), mean)
    deviation_rms = (tokens - mean).square().mean(dim=(1, 2)).sqrt()
    torch.testing.assert_close(deviation_rms, torch.full((5,), AMPLITUDE_CEILING))


def test_amplitude_loss_weights_are_inverse_squared_units_with_a_floor():
    z = latents(4, 1)
    mean, amplitude, _ = amplitude_split(z)
    scales = torch.tensor([2.0, 0.5, 0.2, 1e-3]) * AMPLITUDE_CEILING / amplitude.flatten()
    frames = mean + scales[:, None, None] * (z - mean)  # rms 2, 0.5, 0.2, 0.001 times the cap
    weights = amplitude_loss_weights(frames.reshape(2, 2, TOKENS, DIM), AMPLITUDE_CEILING)
    expected = torch.tensor([[1.0, 4.0], [25.0, AMPLITUDE_LOSS_FLOOR**-2]])
    torch.testing.assert_close(weights, expected)


@pytest.mark.parametrize("cls", [Denoiser, ConsistencyStudent])
def test_fixed_amplitude_is_one(cls):
    model = cls(DIFF_CFG, TOKENS, DIM, generator=gen(0))
    assert torch.equal(model.amplitude(latents(5, 1) * 1e-3), torch.ones(5, 1, 1))


@torch.no_grad()
def test_samples_scale_with_the_amplitude_of_zhat():
    model, (zhat, cond) = _per_sample(dtype=torch.float32), _inputs(torch.float32)

    def draw(z):
        return sample(model, z, cond, gen(3), steps=4)

    full = draw(zhat)
    assert full.abs().max() > 1e-2
    assert not torch.allclose(draw(_shrunk(zhat)) / SCALE, full, atol=1e-2)  # log a is an input
    _without_amplitude_conditioning(model)
    _close_in_float32(draw(_shrunk(zhat)), draw(zhat))
    # Control: with fixed units the sample of the small field is as large as the full one's.
    fixed = perturb(Denoiser(DIFF_CFG, TOKENS, DIM, generator=gen(0)), 7)
    fixed.set_sigma_data(0.5)
    small = sample(fixed, _shrunk(zhat), cond, gen(3), steps=4)
    assert small.abs().max() > 100 * SCALE * full.abs().max()


@torch.no_grad()
def test_consistency_samples_scale_with_the_amplitude_of_zhat():
    model = _without_amplitude_conditioning(_per_sample(ConsistencyStudent, torch.float32))
    zhat, cond = _inputs(torch.float32)

    def draw(z):
        return consistency_sample(model, z, cond, gen(3), sigmas=(80.0, 0.8))

    _close_in_float32(draw(_shrunk(zhat)), draw(zhat))


def test_losses_are_the_same_in_every_amplitude():
    model, (zhat, cond) = _without_amplitude_conditioning(_per_sample()), _inputs()
    r = 0.3 * latents(5, 4).double()
    full = diffusion_loss(model, r, zhat, cond, gen(8))
    torch.testing.assert_close(diffusion_loss(model, SCALE * r, _shrunk(zhat), cond, gen(8)), full)
    student = _without_amplitude_conditioning(_per_sample(ConsistencyStudent))

    def distill(r, zhat):
        return consistency_distillation_loss(student, student, model, r, zhat, cond, gen(8), 6)

    torch.testing.assert_close(distill(SCALE * r, _shrunk(zhat)), distill(r, zhat))


def test_gradient_reaches_every_parameter():
    model = _per_sample()
    zhat, cond = _inputs()
    diffusion_loss(model, 0.3 * latents(5, 4).double(), zhat, cond, gen(8)).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_capped_unit_is_one_from_the_ceiling_up_and_shrinks_below():
    z = latents(5, 1)
    mean, own, _ = amplitude_split(z)
    scales = torch.tensor([1e-2, 0.5, 0.99, 1.01, 100.0])[:, None, None] * AMPLITUDE_CEILING / own
    fields = mean + scales * (z - mean)  # own amplitudes: those factors of the ceiling
    capped = Denoiser(replace(DIFF_CFG, amplitude="capped"), TOKENS, DIM, generator=gen(0))
    # The unit min(a, c) / c: 1 (the normaliser's units) from the ceiling up.
    expected = torch.tensor([1e-2, 0.5, 0.99, 1.0, 1.0])
    torch.testing.assert_close(capped.amplitude(fields).flatten(), expected)
    per_sample = Denoiser(PER_SAMPLE, TOKENS, DIM, generator=gen(0))
    torch.testing.assert_close(
        per_sample.amplitude(fields).flatten()[-1], torch.tensor(100 * AMPLITUDE_CEILING)
    )


def test_amplitude_is_floored_for_a_flat_field():
    flat = latents(5, 1)[:, :1].expand(5, TOKENS, DIM)
    assert torch.equal(amplitude_split(flat)[1].flatten(), torch.full((5,), AMPLITUDE_FLOOR))
