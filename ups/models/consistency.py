"""Consistency distillation (Song et al. 2023) of the EDM residual teacher into a 1-2 step student.

The student is the :class:`~ups.models.diffusion.Denoiser` network with the consistency
parameterisation ``f(x, s) = c_skip(s) x + c_out(s) F(...)``, where
``c_skip(s) = sd^2 / ((s - smin)^2 + sd^2)`` and ``c_out(s) = (s - smin) sd / sqrt(s^2 + sd^2)``.
At ``s = smin`` that is ``f = x`` exactly. This boundary condition is what makes the distillation
target non-degenerate: the constant map (e.g. "no correction", f = 0) cannot satisfy it, so the
loss cannot be minimised by training the correction to zero, which is how the previous stack
failed. The student learns to map any point of a teacher ODE trajectory to its end.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ups.models.diffusion import Denoiser, heun_step, karras_sigmas


class ConsistencyStudent(Denoiser):
    """``f(x, sigma, zhat, cond) -> r`` (B, T, D): a Denoiser net with consistency coefficients."""

    def coefficients(self, sigma: torch.Tensor) -> tuple[torch.Tensor, ...]:
        sd = self.sigma_data
        # sigma_bounds()[0] cast to float32, as the sigma grids hold it: the float64 product
        # rounded once (a float32 product can be one ulp off, leaving c_out(smin) != 0).
        smin = (sd.double() * self.cfg.sigma_min).to(sd.dtype)
        norm = torch.sqrt(sigma**2 + sd**2)
        c_skip = sd**2 / ((sigma - smin) ** 2 + sd**2)  # exactly 1 at smin
        c_out = (sigma - smin) * sd / norm  # exactly 0 at smin
        return c_skip, c_out, 1 / norm, torch.log(sigma / sd) / 4


def student_from_teacher(teacher: Denoiser) -> ConsistencyStudent:
    """A student with the teacher's config, weights and sigma_data (Song et al.'s initialisation).

    Every value is copied from the teacher, so no randomness is involved. Only an EDM teacher
    has the probability-flow ODE a student distils; a refiner is already a few-step sampler.
    """
    if teacher.cfg.schedule != "edm":
        raise ValueError(
            f"the consistency student distils an EDM teacher, and this teacher has"
            f" diffusion.model.schedule: {teacher.cfg.schedule}; a refiner already samples in"
            " diffusion.model.sample_steps network evaluations: use it as the corrector"
            " (eval.corrector: diffusion) or train the teacher with schedule: edm"
        )
    student = ConsistencyStudent(
        teacher.cfg, teacher.tokens, teacher.latent_dim, generator=torch.Generator()
    )
    student.load_state_dict(teacher.state_dict())
    return student.to(teacher.sigma_data.device)


def _check_compatible(student: Denoiser, teacher: Denoiser) -> None:
    """The student's boundary must sit where the teacher's ODE ends."""
    if student.sigma_bounds() != teacher.sigma_bounds():
        raise ValueError(
            f"student sigma range {student.sigma_bounds()} != teacher's {teacher.sigma_bounds()};"
            " copy the teacher's sigma_data and schedule into the student"
        )


def consistency_distillation_loss(
    student: ConsistencyStudent,
    target_student: ConsistencyStudent,
    teacher: Denoiser,
    r: torch.Tensor,
    zhat: torch.Tensor,
    cond: torch.Tensor,
    generator: torch.Generator,
    n_steps: int,
    huber_c: float = 0.0,
    z: torch.Tensor | None = None,
) -> torch.Tensor:
    """Consistency-distillation loss (scalar) on residuals r (B, T, D) given zhat (B, T, D).

    On the teacher's Karras grid s_1 = smin < ... < s_N = smax (N = n_steps): n ~ U{1..N-1},
    ``x_{n+1} = r / amplitude(zhat) + s_{n+1} eps``, one teacher Heun step back to ``x_n`` and
    the target ``target_student(x_n, s_n)`` (both without gradient); the loss compares it with
    ``student(x_{n+1}, s_{n+1})``. Distance: squared error in units of sigma_data, per-sample mean;
    ``huber_c > 0`` uses the pseudo-Huber ``sqrt(d + c^2) - c`` of it instead.
    """
    if n_steps < 2:
        raise ValueError(f"n_steps must be >= 2, got {n_steps}")
    _check_compatible(student, teacher)
    r = r / teacher.amplitude(zhat)
    sigma_min, sigma_max = teacher.sigma_bounds()
    sigmas = karras_sigmas(n_steps, sigma_min, sigma_max, teacher.cfg.rho).flip(0).to(r.device)
    n = torch.randint(0, n_steps - 1, (r.shape[0],), generator=generator, device=r.device)
    s_n, s_next = sigmas[n], sigmas[n + 1]  # (B,) each, s_n < s_next
    eps = torch.randn(r.shape, generator=generator, device=r.device)
    x_next = r + s_next[:, None, None] * eps
    with torch.no_grad():
        x_n = heun_step(teacher, x_next, s_next, s_n, zhat, cond, z)
        target = target_student(x_n, s_n, zhat, cond, z)
    pred = student(x_next, s_next, zhat, cond, z)
    dist = ((pred - target) / student.sigma_data).pow(2).flatten(1).mean(dim=1)  # (B,)
    if huber_c > 0:
        dist = torch.sqrt(dist + huber_c**2) - huber_c
    return dist.mean()


@torch.no_grad()
def consistency_sample(
    student: ConsistencyStudent,
    zhat: torch.Tensor,
    cond: torch.Tensor,
    generator: torch.Generator,
    sigmas: Sequence[float] | None = None,
    noise_scale: float = 1.0,
    z: torch.Tensor | None = None,
) -> torch.Tensor:
    """1-2 step (or more) consistency sampling: residual samples r (B, T, D).

    ``sigmas`` are decreasing noise levels in units of sigma_data (default ``(cfg.sigma_max,)``,
    one step). Step 1: ``x = f(noise_scale * s_1 * eps, s_1)``; each later level s re-noises
    ``x + noise_scale * sqrt(s^2 - smin^2) eps`` and applies f again; the result is returned
    times ``amplitude(zhat)``, in the residual's own units. Randomness only from ``generator``.
    """
    levels = (student.cfg.sigma_max,) if sigmas is None else tuple(sigmas)
    if not levels or any(b >= a for a, b in zip(levels, levels[1:], strict=False)):
        raise ValueError(f"sigmas must be a non-empty decreasing sequence, got {levels}")
    sd = float(student.sigma_data)
    smin = student.cfg.sigma_min * sd
    shape = (zhat.shape[0], student.tokens, student.latent_dim)
    x = torch.zeros(shape, device=zhat.device)
    for i, level in enumerate(levels):
        s = level * sd
        scale = s if i == 0 else (s**2 - smin**2) ** 0.5
        x = x + noise_scale * scale * torch.randn(shape, generator=generator, device=zhat.device)
        x = student(x, torch.full((shape[0],), s, device=zhat.device), zhat, cond, z)
    return x * student.amplitude(zhat)
