"""EDM denoiser of the operator residual: schedule, preconditioning, loss, Heun sampler."""

import math
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
    problem_sigma_data,
    train_denoiser,
    trained_teacher,
)
from ups.checks import InvalidValue
from ups.models.diffusion import (
    Denoiser,
    diffusion_loss,
    heun_step,
    karras_sigmas,
    refiner_sigmas,
    sample,
)

REFINER_CFG = replace(DIFF_CFG, schedule="refiner", sigma_max=1.0, sigma_min=1e-4, sample_steps=3)


def f32(x: float) -> float:
    return torch.tensor(x, dtype=torch.float32).item()


@given(
    n=st.integers(2, 60),
    sigma_min=st.floats(1e-4, 1.0),
    ratio=st.floats(2.0, 1e5),
    rho=st.floats(1.0, 10.0),
)
def test_karras_sigmas_run_exactly_from_max_to_min_strictly_decreasing(n, sigma_min, ratio, rho):
    sigma_max = sigma_min * ratio
    s = karras_sigmas(n, sigma_min, sigma_max, rho)
    assert s.shape == (n,) and s.dtype == torch.float32
    assert s[0].item() == f32(sigma_max) and s[-1].item() == f32(sigma_min)
    assert torch.all(s[1:] < s[:-1])


def test_karras_sigmas_single_step_is_sigma_max():
    assert karras_sigmas(1, 0.002, 80.0, 7.0).tolist() == [f32(80.0)]


@pytest.mark.parametrize("rho", [1.0, 7.0])
def test_karras_sigmas_are_evenly_spaced_in_sigma_to_the_one_over_rho(rho):
    steps = torch.diff(karras_sigmas(11, 0.002, 80.0, rho).double() ** (1 / rho))
    torch.testing.assert_close(steps, steps.mean().expand(10), rtol=1e-5, atol=0.0)


def test_sigma_data_is_a_saved_buffer():
    model = denoiser()
    model.set_sigma_data(0.37)
    state = model.state_dict()
    assert state["sigma_data"].item() == pytest.approx(0.37)
    fresh = denoiser(1)
    fresh.load_state_dict(state)
    assert fresh.sigma_data.item() == pytest.approx(0.37)
    assert fresh.sigma_bounds() == pytest.approx((0.37 * 0.002, 0.37 * 80.0))


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan")])
def test_set_sigma_data_refuses_non_positive(value):
    model = denoiser()
    with pytest.raises(ValueError, match="sigma_data"):
        model.set_sigma_data(value)
    assert model.sigma_data.item() == 1.0


@pytest.mark.parametrize(
    "field, value",
    [
        ("sigma_min", 0.0),
        ("sigma_max", 0.001),
        ("rho", 0.0),
        ("p_std", 0.0),
        ("sample_steps", 0),
        ("amplitude", "frame"),
        ("schedule", "ddpm"),
    ],
)
def test_bad_config_raises(field, value):
    cfg = replace(DIFF_CFG, **{field: value})
    with pytest.raises(InvalidValue, match=field):
        Denoiser(cfg, TOKENS, DIM, generator=gen(0))


def test_coefficients_are_edm_preconditioning():
    model = denoiser(sigma_data=0.5)
    sigma = torch.tensor([0.01, 0.5, 20.0])
    c_skip, c_out, c_in, c_noise = model.coefficients(sigma)
    s, sd = sigma.double(), 0.5
    torch.testing.assert_close(c_skip.double(), sd**2 / (s**2 + sd**2))
    torch.testing.assert_close(c_out.double(), s * sd / (s**2 + sd**2).sqrt())
    torch.testing.assert_close(c_in.double(), 1 / (s**2 + sd**2).sqrt())
    torch.testing.assert_close(c_noise.double(), torch.log(s / sd) / 4)


def test_fresh_denoiser_is_its_skip_path():
    model = denoiser(sigma_data=0.5)
    x, zhat, cond = latents(3, 1), latents(3, 2), conds(3, 3)
    sigma = torch.tensor([0.1, 1.0, 10.0])
    c_skip = 0.25 / (sigma**2 + 0.25)
    torch.testing.assert_close(model(x, sigma, zhat, cond), c_skip[:, None, None] * x)


def test_untrained_loss_is_about_one():
    # EDM weighting makes the effective target unit-variance: a zero-F model scores ~1.
    model = denoiser(sigma_data=problem_sigma_data())
    g = gen(1)
    with torch.no_grad():
        losses = [diffusion_loss(model, *problem(64, g), g).item() for _ in range(8)]
    assert 0.5 < sum(losses) / len(losses) < 2.0


def test_loss_draws_its_noise_from_the_generator():
    model = denoiser(sigma_data=problem_sigma_data())
    r, zhat, cond = problem(16, gen(1))
    with torch.no_grad():
        a = diffusion_loss(model, r, zhat, cond, gen(10))
        b = diffusion_loss(model, r, zhat, cond, gen(10))
        c = diffusion_loss(model, r, zhat, cond, gen(11))
    assert torch.equal(a, b)
    assert a.item() != c.item()


def inputs_seen_by_the_loss(model: Denoiser, r, zhat, cond) -> tuple:
    """The arguments (x, sigma, zhat, cond, z) one diffusion_loss call passes the denoiser."""
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args))
    with torch.no_grad():
        diffusion_loss(model, r, zhat, cond, gen(2))
    (args,) = seen
    return args


def test_loss_feeds_the_denoiser_really_noisy_residuals():
    model = denoiser(sigma_data=problem_sigma_data())
    r, zhat, cond = problem(4096, gen(1))
    x, sigma, seen_zhat, _, _ = inputs_seen_by_the_loss(model, r, zhat, cond)
    assert torch.equal(seen_zhat, zhat)
    assert not torch.allclose(x, r)
    sd, cfg = model.sigma_data, model.cfg
    ln_rel = torch.log(sigma / sd)  # ln(sigma / sigma_data) ~ N(p_mean, p_std^2)
    assert ln_rel.mean().item() == pytest.approx(cfg.p_mean, abs=0.1)
    assert ln_rel.std().item() == pytest.approx(cfg.p_std, rel=0.05)
    eps = (x - r) / sigma[:, None, None]
    assert eps.mean().item() == pytest.approx(0.0, abs=0.01)
    assert eps.std().item() == pytest.approx(1.0, rel=0.02)


@pytest.mark.parametrize("schedule", ["edm", "refiner"])
def test_diffusion_loss_reaches_every_parameter(schedule):
    cfg = REFINER_CFG if schedule == "refiner" else DIFF_CFG
    model = Denoiser(cfg, TOKENS, DIM, generator=gen(0))
    model.set_sigma_data(problem_sigma_data())
    model = perturb(model, 7)
    g = gen(1)
    diffusion_loss(model, *problem(16, g), g).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_heun_step_is_exact_for_a_zero_denoiser():
    # D = 0 gives dx/dsigma = x / sigma, whose solution x * s_next / s is linear in sigma:
    # Heun is exact, and the Euler step to sigma = 0 lands at 0.
    class Zero(Denoiser):
        def forward(self, x, sigma, zhat, cond, z=None):
            return torch.zeros_like(x)

    zero = Zero(DIFF_CFG, TOKENS, DIM, generator=gen(0))
    x, zhat, cond = latents(3, 1), latents(3, 2), conds(3, 3)
    torch.testing.assert_close(heun_step(zero, x, 2.0, 0.5, zhat, cond), 0.25 * x)
    s, s_next = torch.tensor([2.0, 4.0, 1.0]), torch.tensor([1.0, 1.0, 0.5])
    expected = x * (s_next / s)[:, None, None]
    torch.testing.assert_close(heun_step(zero, x, s, s_next, zhat, cond), expected)
    assert torch.count_nonzero(heun_step(zero, x, 2.0, 0.0, zhat, cond)) == 0


def test_sampler_integrates_the_gaussian_probability_flow():
    # The zero-F denoiser, D = c_skip x, is the exact denoiser of r ~ N(0, sd^2); its ODE
    # dx/dsigma = sigma x / (sigma^2 + sd^2) maps x(smax) to x(smax) * sd / sqrt(smax^2 + sd^2).
    sd = 0.7
    model = denoiser(sigma_data=sd)
    zhat, cond = latents(8, 1), conds(8, 2)
    _, smax = model.sigma_bounds()
    x0 = smax * torch.randn(8, TOKENS, DIM, generator=gen(3))  # sample()'s first draw
    exact = x0 * sd / math.sqrt(smax**2 + sd**2)
    out = sample(model, zhat, cond, gen(3), steps=40)
    assert (out - exact).abs().max() < 0.02 * exact.abs().max()


@pytest.mark.determinism
def test_sample_same_generator_same_bits_different_seed_different_sample():
    model = perturb(denoiser(sigma_data=0.5), 7)
    zhat, cond = latents(4, 1), conds(4, 2)
    a, b, c = (sample(model, zhat, cond, gen(seed)) for seed in (5, 5, 6))
    assert a.shape == (4, TOKENS, DIM)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c, atol=1e-3)


def test_zero_noise_scale_ignores_the_seed():
    model = perturb(denoiser(sigma_data=0.5), 7)
    zhat, cond = latents(4, 1), conds(4, 2)
    a = sample(model, zhat, cond, gen(5), noise_scale=0.0)
    b = sample(model, zhat, cond, gen(6), noise_scale=0.0)
    assert torch.equal(a, b)
    assert not torch.equal(a, sample(model, zhat, cond, gen(5)))


def _spread_and_error(model: Denoiser, seeds: int = 8) -> tuple[float, float]:
    """Std across sampling seeds for fixed zhat, and RMS error of the seed-mean to the true r."""
    r, zhat, cond = problem(16, gen(123))
    samples = torch.stack([sample(model, zhat, cond, gen(100 + k)) for k in range(seeds)])
    spread = samples.std(dim=0).mean().item()
    error = (samples.mean(dim=0) - r).pow(2).mean().sqrt().item()
    return spread, error


def test_spread_shrinks_as_the_model_learns(teacher_state):
    # r is a deterministic function of zhat, so p(r | zhat) is a point mass: an untrained model
    # samples ~N(0, sd^2) whatever zhat is, a trained one should collapse onto r(zhat).
    sd = problem_sigma_data()
    untrained_spread, untrained_error = _spread_and_error(denoiser(0, sd))
    assert 0.5 * sd < untrained_spread < 2.0 * sd
    trained_spread, trained_error = _spread_and_error(trained_teacher(teacher_state))
    assert trained_spread < 0.5 * untrained_spread
    assert trained_error < 0.5 * untrained_error


def test_training_lowers_the_loss():
    sd = problem_sigma_data()
    model = denoiser(0, sd)
    g = gen(1)

    def mean_loss():
        with torch.no_grad():
            return sum(diffusion_loss(model, *problem(64, g), g).item() for _ in range(8)) / 8

    before = mean_loss()
    train_denoiser(model, 100, seed=2)
    assert mean_loss() < 0.5 * before


# --- previous_state: the denoiser also sees the state the prediction was made from -------------
STATE_CFG = replace(DIFF_CFG, previous_state=True)


def state_problem(batch: int, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    """(r, zhat, cond, z) with r = 0.5 * z + 0.3 and z, zhat independent N(0, 1):
    ``zhat`` alone says nothing about ``r``, its state ``z`` says all."""
    z, zhat = (torch.randn(batch, TOKENS, DIM, generator=g) for _ in range(2))
    return 0.5 * z + 0.3, zhat, torch.full((batch, 2), 0.01), z


def train_on_state_problem(cfg, steps: int = 300) -> Denoiser:
    model = Denoiser(cfg, TOKENS, DIM, generator=gen(0))
    model.set_sigma_data(state_problem(4096, gen(5))[0].std().item())
    g, opt = gen(2), torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        r, zhat, cond, z = state_problem(64, g)
        loss = diffusion_loss(model, r, zhat, cond, g, z)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_a_previous_state_denoiser_refuses_to_run_without_the_state():
    model = Denoiser(STATE_CFG, TOKENS, DIM, generator=gen(0))
    with pytest.raises(ValueError, match="previous_state"):
        model(latents(2, 1), torch.ones(2), latents(2, 2), conds(2, 3))


def test_the_previous_state_reaches_the_output_and_its_loss_every_parameter():
    model = perturb(Denoiser(STATE_CFG, TOKENS, DIM, generator=gen(0)), 7)
    x, zhat, cond = latents(3, 1), latents(3, 2), conds(3, 3)
    a = model(x, torch.ones(3), zhat, cond, latents(3, 4))
    b = model(x, torch.ones(3), zhat, cond, latents(3, 5))
    assert not torch.allclose(a, b)
    g = gen(1)
    r, zhat, cond, z = state_problem(16, g)
    diffusion_loss(model, r, zhat, cond, g, z).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_without_previous_state_the_state_is_ignored():
    model = perturb(denoiser(), 7)
    x, zhat, cond = latents(3, 1), latents(3, 2), conds(3, 3)
    expected = model(x, torch.ones(3), zhat, cond)
    assert torch.equal(model(x, torch.ones(3), zhat, cond, latents(3, 4)), expected)


def test_only_a_previous_state_denoiser_learns_a_residual_told_by_the_state():
    r, zhat, cond, z = state_problem(256, gen(11))

    def sample_error(cfg) -> float:
        model = train_on_state_problem(cfg)
        draw = sample(model, zhat, cond, gen(12), noise_scale=0.0, z=z)
        return ((draw - r).pow(2).mean() / r.pow(2).mean()).item()

    blind, sighted = sample_error(DIFF_CFG), sample_error(STATE_CFG)
    # r's energy: 0.25 from the state, 0.09 from the constant; blind, only the constant is learnable
    assert blind > 0.6
    assert sighted < 0.05


# --- schedule: refiner (PDE-Refiner): a few fixed levels, refined from the operator's step ------


def refiner(seed: int = 0, sigma_data: float = 0.5) -> Denoiser:
    model = Denoiser(REFINER_CFG, TOKENS, DIM, generator=gen(seed))
    model.set_sigma_data(sigma_data)
    return model


@given(n=st.integers(2, 12), sigma_min=st.floats(1e-7, 1.0), ratio=st.floats(2.0, 1e7))
def test_refiner_sigmas_are_geometric_from_max_to_min(n, sigma_min, ratio):
    sigma_max = sigma_min * ratio
    s = refiner_sigmas(n, sigma_min, sigma_max)
    assert s.shape == (n,) and s.dtype == torch.float32
    assert s[0].item() == f32(sigma_max) and s[-1].item() == f32(sigma_min)
    steps = torch.log(s.double()).diff()
    torch.testing.assert_close(steps, torch.full_like(steps, math.log(1 / ratio) / (n - 1)))


def test_refiner_sigmas_are_pde_refiners_levels():
    # Lippe et al.'s K = 3, sigma_min = 4e-7: levels sigma_min^(k/K), k = 1..3
    s = refiner_sigmas(3, 4e-7, 4e-7 ** (1 / 3)).double()
    expected = torch.tensor([4e-7 ** (k / 3) for k in (1, 2, 3)], dtype=torch.float64)
    torch.testing.assert_close(s, expected, rtol=1e-6, atol=0)


def test_refiner_loss_trains_on_its_levels_only_and_on_each_alike():
    model = refiner(sigma_data=problem_sigma_data())
    sigma = inputs_seen_by_the_loss(model, *problem(3000, gen(1)))[1]
    levels = refiner_sigmas(3, *model.sigma_bounds())
    share = torch.stack([(sigma == level).float().mean() for level in levels])
    assert share.sum().item() == 1.0  # no other level
    assert torch.all((share - 1 / 3).abs() < 0.03)


def test_refine_starts_at_the_operator_step_and_denoises_level_by_level():
    # A fresh denoiser is D(x, s) = c_skip(s) x, so refinement is r <- c_skip(s) (r + t s eps)
    # from r = 0, with the noise eps drawn level by level from the generator.
    model, t = refiner(), 0.5
    zhat, cond = latents(4, 1), conds(4, 2)
    calls = []
    model.register_forward_pre_hook(lambda m, args: calls.append(args))
    out = sample(model, zhat, cond, gen(3), noise_scale=t)
    g, r = gen(3), torch.zeros(4, TOKENS, DIM)
    for s in refiner_sigmas(3, *model.sigma_bounds()):
        eps = torch.randn(4, TOKENS, DIM, generator=g)
        r = 0.25 / (s**2 + 0.25) * (r + t * s * eps)
    torch.testing.assert_close(out, r)
    assert len(calls) == 3  # one network evaluation per level


@pytest.mark.determinism
def test_refine_same_generator_same_bits_zero_noise_ignores_the_seed():
    model = perturb(refiner(), 7)
    zhat, cond = latents(4, 1), conds(4, 2)
    a, b, c = (sample(model, zhat, cond, gen(seed)) for seed in (5, 5, 6))
    assert torch.equal(a, b) and not torch.allclose(a, c, atol=1e-4)
    d, e = (sample(model, zhat, cond, gen(seed), noise_scale=0.0) for seed in (5, 6))
    assert torch.equal(d, e)


def test_a_trained_refiner_recovers_the_residual():
    r, zhat, cond = problem(64, gen(123))
    model = refiner(sigma_data=problem_sigma_data())

    def error() -> float:
        draw = sample(model, zhat, cond, gen(4))
        return ((draw - r).pow(2).mean() / r.pow(2).mean()).sqrt().item()

    untrained = error()
    train_denoiser(model, 300, seed=2)
    assert untrained > 0.9  # the zero-F refiner keeps r near 0 (c_skip < 1 at the top level)
    assert error() < 0.3 * untrained
