"""Consistency student: boundary condition, initialisation from the teacher, loss and sampler."""

import copy
from dataclasses import replace

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.models.conftest import (
    DIFF_CFG,
    DIM,
    TOKENS,
    conds,
    denoiser,
    gen,
    latents,
    perturb,
    problem,
    student,
    trained_teacher,
)
from ups.models.consistency import (
    ConsistencyStudent,
    consistency_distillation_loss,
    consistency_sample,
    student_from_teacher,
)
from ups.models.diffusion import Denoiser, karras_sigmas, sample

CD_STEPS = 10  # Karras grid of the distillation loss


@given(sigma_data=st.floats(1e-3, 1e3))
def test_student_is_exactly_the_identity_at_sigma_min(sigma_data):
    # Perturbed, so F != 0: c_out must be exactly 0 (and c_skip exactly 1), not merely small.
    model = perturb(student(), 7)
    model.set_sigma_data(sigma_data)
    smin, smax = model.sigma_bounds()
    s = karras_sigmas(CD_STEPS, smin, smax, model.cfg.rho)[-1]  # the loss's grid end
    x, zhat, cond = latents(3, 1), latents(3, 2), conds(3, 3)
    with torch.no_grad():
        assert torch.equal(model(x, s, zhat, cond), x)
        assert not torch.allclose(model(x, 2 * s, zhat, cond), x)


def test_student_from_teacher_copies_weights_and_sigma_data():
    teacher = perturb(denoiser(3, sigma_data=0.37), 7)
    pupil = student_from_teacher(teacher)
    assert type(pupil) is ConsistencyStudent
    assert pupil.cfg == teacher.cfg and (pupil.tokens, pupil.latent_dim) == (TOKENS, DIM)
    a, b = teacher.state_dict(), pupil.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # Copies, not shared storage: training the student leaves the teacher alone.
    with torch.no_grad():
        pupil.backbone.head.weight.add_(1.0)
    assert not torch.equal(teacher.backbone.head.weight, pupil.backbone.head.weight)


def test_student_from_teacher_is_deterministic():
    teacher = perturb(denoiser(3, sigma_data=0.37), 7)
    a, b = student_from_teacher(teacher).state_dict(), student_from_teacher(teacher).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_refiner_teacher_is_refused_with_the_way_out():
    refiner = Denoiser(replace(DIFF_CFG, schedule="refiner"), TOKENS, DIM, generator=gen(0))
    with pytest.raises(ValueError, match="schedule: refiner.*eval.corrector: diffusion"):
        student_from_teacher(refiner)


def _loss(pupil, target, teacher, seed=1, n_steps=CD_STEPS, batch=16, **kwargs):
    g = gen(seed)
    return consistency_distillation_loss(
        pupil, target, teacher, *problem(batch, g), g, n_steps=n_steps, **kwargs
    )


def test_incompatible_sigma_ranges_raise():
    teacher = denoiser(0, sigma_data=0.5)
    pupil = student_from_teacher(teacher)
    pupil.set_sigma_data(0.6)
    with pytest.raises(ValueError, match="sigma range"):
        _loss(pupil, pupil, teacher)
    other = ConsistencyStudent(replace(DIFF_CFG, sigma_min=0.01), TOKENS, DIM, generator=gen(0))
    other.set_sigma_data(0.5)
    with pytest.raises(ValueError, match="sigma range"):
        _loss(other, other, teacher)


@pytest.mark.parametrize("n_steps", [1, 0])
def test_loss_needs_at_least_two_grid_points(n_steps):
    teacher = denoiser(0, sigma_data=0.5)
    pupil = student_from_teacher(teacher)
    with pytest.raises(ValueError, match="n_steps"):
        _loss(pupil, pupil, teacher, n_steps=n_steps)


class ZeroStudent(ConsistencyStudent):
    """Predicts "no correction" (r = 0) whatever the input."""

    def forward(self, x, sigma, zhat, cond, z=None):
        return torch.zeros_like(x)


def test_zero_correction_does_not_minimise_the_loss(teacher_state):
    # The boundary condition pins the target: at n = 0 it is f(x_n, smin) = x_n ~ r exactly, and
    # at higher n the target is the student's estimate of the same r. Predicting 0 therefore costs
    # about E|r|^2 / sigma_data^2 ~ 1 per sample, while the teacher-initialised student already
    # tracks the target. (A loss without the boundary could be driven to 0 by any constant map.)
    teacher = trained_teacher(teacher_state)
    pupil = student_from_teacher(teacher)
    zero = ZeroStudent(DIFF_CFG, TOKENS, DIM, generator=gen(0))
    zero.load_state_dict(pupil.state_dict())  # same sigma_data, so the same units
    with torch.no_grad():
        real = sum(_loss(pupil, pupil, teacher, seed=s, batch=64) for s in range(4)) / 4
        none = sum(_loss(zero, pupil, teacher, seed=s, batch=64) for s in range(4)) / 4
    assert none.item() > 0.5
    assert none.item() > 3 * real.item()


def test_huber_option_is_the_pseudo_huber_of_the_squared_distance(teacher_state):
    teacher = trained_teacher(teacher_state)
    pupil = perturb(student_from_teacher(teacher), 7, scale=0.05)
    target = student_from_teacher(teacher)
    with torch.no_grad():  # batch of one: the loss is that sample's distance d
        d = _loss(pupil, target, teacher, batch=1)
        huber = _loss(pupil, target, teacher, batch=1, huber_c=0.1)
    assert d.item() > 0
    torch.testing.assert_close(huber, torch.sqrt(d + 0.1**2) - 0.1)


def test_loss_grads_reach_every_student_parameter_and_never_the_teacher(teacher_state):
    teacher = trained_teacher(teacher_state).requires_grad_(True)
    pupil = perturb(student_from_teacher(teacher), 7, scale=0.05)
    target = copy.deepcopy(pupil)
    _loss(pupil, target, teacher).backward()
    for name, p in pupil.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for name, p in [*teacher.named_parameters(), *target.named_parameters()]:
        assert p.grad is None, name


@pytest.mark.determinism
def test_sample_same_generator_same_bits_different_seed_different_sample():
    model = perturb(student(), 7)
    model.set_sigma_data(0.5)
    zhat, cond = latents(4, 1), conds(4, 2)
    for sigmas in [None, (80.0, 0.8)]:
        a, b, c = (consistency_sample(model, zhat, cond, gen(s), sigmas) for s in (5, 5, 6))
        assert a.shape == (4, TOKENS, DIM)
        assert torch.equal(a, b)
        assert not torch.allclose(a, c, atol=1e-3)


def test_two_step_sample_differs_from_one_step():
    model = perturb(student(), 7)
    zhat, cond = latents(4, 1), conds(4, 2)
    one = consistency_sample(model, zhat, cond, gen(5), sigmas=(80.0,))
    two = consistency_sample(model, zhat, cond, gen(5), sigmas=(80.0, 0.8))
    assert one.shape == two.shape == (4, TOKENS, DIM)
    assert not torch.allclose(one, two, atol=1e-3)


@pytest.mark.parametrize("sigmas", [(), (1.0, 1.0), (0.5, 1.0), (80.0, 1.0, 2.0)])
def test_sample_sigmas_must_be_decreasing(sigmas):
    with pytest.raises(ValueError, match="decreasing"):
        consistency_sample(student(), latents(2, 1), conds(2, 2), gen(0), sigmas)


def test_later_steps_renoise_from_sigma_min_to_the_next_level():
    # x_in = x_prev + sqrt(s^2 - smin^2) eps: the student's output sits at smin, not at 0.
    model = perturb(student(), 7)
    model.set_sigma_data(0.5)
    smin = model.sigma_bounds()[0]
    zhat, cond = latents(4, 1), conds(4, 2)
    calls = []
    model.register_forward_hook(lambda m, args, out: calls.append((args[0], args[1], out)))
    levels = (80.0, 2 * model.cfg.sigma_min)  # close to smin, where the sqrt matters
    consistency_sample(model, zhat, cond, gen(5), levels)
    g = gen(5)
    first, second = (torch.randn(4, TOKENS, DIM, generator=g) for _ in range(2))
    (x1, _, out1), (x2, s2, _) = calls
    torch.testing.assert_close(x1, 80.0 * 0.5 * first)
    torch.testing.assert_close(s2, torch.full((4,), levels[1] * 0.5))
    torch.testing.assert_close(x2 - out1, ((levels[1] * 0.5) ** 2 - smin**2) ** 0.5 * second)


def test_zero_noise_scale_ignores_the_seed():
    model = perturb(student(), 7)
    zhat, cond = latents(4, 1), conds(4, 2)
    a = consistency_sample(model, zhat, cond, gen(5), (80.0, 0.8), noise_scale=0.0)
    b = consistency_sample(model, zhat, cond, gen(6), (80.0, 0.8), noise_scale=0.0)
    assert torch.equal(a, b)


def _distil(pupil, teacher, steps, seed):
    g = gen(seed)
    opt = torch.optim.AdamW(pupil.parameters(), lr=1e-3)
    for _ in range(steps):
        # target_student = the student itself (mu = 0); the loss evaluates it without gradient.
        loss = consistency_distillation_loss(
            pupil, pupil, teacher, *problem(64, g), g, n_steps=CD_STEPS
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    return pupil


def test_one_step_student_tracks_the_teacher_ode_after_distillation(teacher_state):
    teacher = trained_teacher(teacher_state)
    pupil = student_from_teacher(teacher)
    _, zhat, cond = problem(16, gen(123))
    # Both samplers draw sigma_max * sd * randn(shape) first: the same seed, the same start.
    starts = []
    first_input = teacher.register_forward_pre_hook(lambda m, args: starts.append(args[0]))
    ode = sample(teacher, zhat, cond, gen(11))
    first_input.remove()
    pupil.register_forward_pre_hook(lambda m, args: starts.append(args[0]))

    def error():
        return (consistency_sample(pupil, zhat, cond, gen(11)) - ode).pow(2).mean().item()

    before = error()
    assert torch.equal(starts[0], starts[-1])
    _distil(pupil, teacher, 300, seed=4)
    after = error()
    no_correction = ode.pow(2).mean().item()
    assert after < 0.25 * no_correction
    assert after < 0.5 * before
