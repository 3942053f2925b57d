"""Stage 4: consistency distillation of the diffusion teacher into a 1-2 step student.

The student starts as a copy of the teacher (its architecture and weights) and learns to map
every point of a teacher ODE trajectory to the trajectory's end; the target is the student
itself without gradient (Song et al.'s target network with EMA rate 0). Selection uses val
rollouts with the student's correction. ``teacher_match`` measures, on a fixed set of val pairs
and the same initial noise, ``mean |r_student - r_teacher|^2 / mean |r_teacher|^2``: the
operator alone (r = 0) scores exactly 1, a student that learned the teacher scores below 1.
Both are taken at the temperature the 'corrected' mode samples at, the teacher's
``diffusion.val_noise_scale``, so the student is selected for the use it is put to.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ups.models.consistency import (
    ConsistencyStudent,
    consistency_distillation_loss,
    consistency_sample,
    student_from_teacher,
)
from ups.models.diffusion import sample
from ups.stages.context import StageContext
from ups.stages.diffusion import load_denoiser
from ups.stages.residuals import ResidualStage

NAME = "consistency"
TWO_STEP_SIGMA = 0.8  # second noise level of 2-step sampling, in units of sigma_data
TEACHER_MATCH_PAIRS = 512  # val pairs on which the student is compared with the teacher


def student_sigmas(ctx: StageContext) -> tuple[float, ...]:
    """Noise levels of the student's sampler (units of sigma_data), from the config."""
    sigma_max = ctx.cfg.diffusion.model.sigma_max
    return (sigma_max,) if ctx.cfg.consistency.student_steps == 1 else (sigma_max, TWO_STEP_SIGMA)


def load_student(ctx: StageContext) -> ConsistencyStudent:
    """The trained consistency student of this run, frozen."""
    return ctx.load_frozen(NAME, lambda: student_from_teacher(load_denoiser(ctx)))


class ConsistencyStage(ResidualStage):
    name = NAME

    def __init__(self, ctx: StageContext):
        super().__init__(ctx, ctx.cfg.consistency)
        self.teacher = load_denoiser(ctx)
        self.model = student_from_teacher(self.teacher).requires_grad_(True)
        self.temperature = ctx.cfg.diffusion.val_noise_scale  # training config, not eval's
        self.match_zhat = self.val_pairs.zhat[:TEACHER_MATCH_PAIRS]
        self.match_z = self.val_pairs.z[:TEACHER_MATCH_PAIRS]
        with torch.no_grad():
            self.match_teacher = sample(
                self.teacher,
                self.match_zhat,
                ctx.cond(len(self.match_zhat)),
                ctx.generator(f"{NAME}/teacher_match"),
                noise_scale=self.temperature,
                z=self.match_z,
            )

    def losses(self, batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        zhat, r, z = batch
        return {"distillation": self._loss(self.model, zhat, r, z, generator)}

    def _loss(self, student, zhat, r, z, generator) -> torch.Tensor:
        return consistency_distillation_loss(
            student,
            student,
            self.teacher,
            r,
            zhat,
            self.ctx.cond(len(r)),
            generator,
            n_steps=self.cfg.teacher_steps,
            huber_c=self.cfg.huber_c,
            z=z,
        )

    @torch.no_grad()
    def validate(self, model: nn.Module) -> dict[str, float]:
        pairs = self.val_pairs
        loss = self._loss(
            model, pairs.zhat, pairs.r, pairs.z, self.ctx.generator(f"{NAME}/val_loss")
        )
        sigmas = student_sigmas(self.ctx)
        noise = self.ctx.generator(f"{NAME}/val_sampling")

        def corrector(zhat, cond, z):
            return consistency_sample(model, zhat, cond, noise, sigmas, self.temperature, z)

        metrics = self.corrected_val_metrics(corrector)
        student = consistency_sample(
            model,
            self.match_zhat,
            self.ctx.cond(len(self.match_zhat)),
            self.ctx.generator(f"{NAME}/teacher_match"),
            sigmas,
            self.temperature,
            self.match_z,
        )
        gap = (student - self.match_teacher).pow(2).mean() / self.match_teacher.pow(2).mean()
        return {"loss": float(loss), **metrics, "teacher_match": float(gap)}

    def extra_state(self) -> dict[str, Any]:
        return {}
