"""A trained run's models, frozen, with the three things evaluation asks of them: step, sample
candidates, decode to physical units.

Shapes: ``z`` (M, tokens, D) latents; physical grids (M, X) float64 numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ups.eval.views import SymmetryViews
from ups.models.conservation import MassProjection, conserving, projection_of
from ups.models.consistency import consistency_sample
from ups.models.diffusion import sample
from ups.rollout import Corrector
from ups.stages.autoencoder import load_autoencoder
from ups.stages.consistency import load_student, student_sigmas
from ups.stages.context import MissingUpstreamError, StageContext
from ups.stages.diffusion import load_denoiser
from ups.stages.operator import load_operator

# (model, zhat (M, tokens, D), cond (M, 2), generator, noise_scale, z (M, tokens, D)) -> residual
# samples (M, tokens, D); z is the state zhat = op(z) was predicted from.
Sampler = Callable[
    [nn.Module, torch.Tensor, torch.Tensor, torch.Generator, float, torch.Tensor], torch.Tensor
]


def has_corrector(ctx: StageContext, corrector: str) -> bool:
    """Whether the run has ``corrector``'s stage: listed in its ``stages`` (then it must load)
    or trained on its own (``ups train --resume RUN --stage NAME``, which leaves a best
    checkpoint). A run of ``stages=[autoencoder, operator]`` has none."""
    return corrector in ctx.cfg.stages or ctx.record.checkpoint_path(corrector).is_file()


@dataclass
class Surrogate:
    """Autoencoder + operator + corrector of one run, on the run's device, frozen; the
    corrector and its sampler are None for a run without the corrector's stage; ``projection``
    holds corrected states to their inputs' mass, None without ``operator.conserve_mass``."""

    ctx: StageContext
    autoencoder: nn.Module
    operator: nn.Module
    corrector_model: nn.Module | None
    sampler: Sampler | None
    projection: MassProjection | None

    @classmethod
    def load(cls, ctx: StageContext, corrector: str) -> Surrogate:
        """Load the run's trained models; ``corrector`` is 'consistency' or 'diffusion'. With
        ``eval.views`` > 1 the operator steps as its average over that many symmetry views."""
        autoencoder = load_autoencoder(ctx)
        operator = load_operator(ctx, autoencoder)
        projection = projection_of(operator)
        if ctx.cfg.eval.views > 1:
            operator = SymmetryViews(operator, autoencoder, ctx.normalizer, ctx.cfg.eval.views)
        if not has_corrector(ctx, corrector):
            return cls(ctx, autoencoder, operator, None, None, projection)
        if corrector == "consistency":
            sigmas = student_sigmas(ctx)
            model = load_student(ctx)

            def draw(model, zhat, cond, generator, noise_scale, z):
                return consistency_sample(model, zhat, cond, generator, sigmas, noise_scale, z)

        else:
            model = load_denoiser(ctx)

            def draw(model, zhat, cond, generator, noise_scale, z):
                return sample(model, zhat, cond, generator, noise_scale=noise_scale, z=z)

        return cls(ctx, autoencoder, operator, model, draw, projection)

    @torch.no_grad()
    def encode(self, u: np.ndarray) -> torch.Tensor:
        """Physical grids (M, X) -> latents (M, tokens, D)."""
        return self.autoencoder.encode(self.ctx.to_model(u))

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> np.ndarray:
        """Latents (M, tokens, D) -> physical grids (M, X)."""
        return self.ctx.physical(self.autoencoder.decode(z))

    @torch.no_grad()
    def step(self, z: torch.Tensor) -> torch.Tensor:
        """The operator's deterministic step (M, tokens, D) -> (M, tokens, D)."""
        return self.operator(z, self.ctx.cond(len(z)))

    def corrector(self, generator: torch.Generator, noise_scale: float = 1.0) -> Corrector:
        """A corrector for :func:`ups.rollout.rollout`: one sampled residual per row."""
        self.require_corrector()

        def correct(zhat: torch.Tensor, cond: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
            return self.sampler(self.corrector_model, zhat, cond, generator, noise_scale, z)

        return conserving(correct, self.projection)

    def proposer(self, generator: torch.Generator, noise_scale: float, keep_step: bool):
        """``propose(z (M, tokens, D), k) -> (M, k, tokens, D)``: the operator's step plus a
        sampled residual each, drawn from ``generator``; with ``keep_step`` candidate 0 is the
        operator's step itself, so a search is never left with only states worse than it."""
        correct = self.corrector(generator, noise_scale)

        @torch.no_grad()
        def propose(z: torch.Tensor, k: int) -> torch.Tensor:
            step = self.step(z)  # (M, tokens, D)
            drawn = k - 1 if keep_step else k
            zhat = step.repeat_interleave(drawn, dim=0)  # (M*drawn, tokens, D)
            cond, state = self.ctx.cond(len(zhat)), z.repeat_interleave(drawn, dim=0)
            r = correct(zhat, cond, state)
            samples = (zhat + r).unflatten(0, (len(z), drawn))
            return torch.cat([step[:, None], samples], dim=1) if keep_step else samples

        return propose

    def require_corrector(self, alternative: str = "") -> None:
        """Raise, naming the way out (and ``alternative``), if the run has no corrector."""
        if self.corrector_model is None:
            name, run = self.ctx.cfg.eval.corrector, self.ctx.record.path
            raise MissingUpstreamError(
                f"{run} has no '{name}' stage to sample corrections from; train it: "
                f"ups train --resume {run} --stage {name}{alternative}"
            )
