"""Symmetry views: a latent step averaged over exact symmetries of periodic Burgers.

``eval.views = V`` > 1 replaces the operator's step ``z -> F(z)`` by

    F_V(z) = mean_g  E( g^-1 D( F( E( g D(z) ) ) ) )

over V group elements ``g`` (``ups.data.augment.burgers_symmetry``: a shift and optionally the
reflection ``u(x) -> -u(-x)``), ``D``/``E`` the autoencoder's decode/encode in normalised units.
Each ``g`` maps solutions to solutions, so every term is a prediction of the same next state, seen
through another cut of the grid into tokens: a test-time ensemble that costs V operator calls and
no training. Shifts by a whole token are exact symmetries of the operator already (relative
positions), so the views' shifts lie inside one token: ``V / 2`` evenly spaced shifts in
``[0, points / tokens)``, each with and without the reflection (V = 2: the reflection alone).
"""

from __future__ import annotations

import torch
from torch import nn

from ups.data.augment import burgers_symmetry
from ups.data.normalize import Normalizer
from ups.schema import views_fit


def view_elements(views: int, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``views`` group elements as (shift (V,) grid points, reflect (V,) bool); element 0 is
    the identity. ``views`` is 1 or twice a divisor of ``patch`` (grid points per token)."""
    if not views_fit(views, patch):
        raise ValueError(f"views must be 1 or twice a divisor of {patch}, got {views}")
    if views == 1:
        return torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.bool)
    shifts = torch.arange(0, patch, patch // (views // 2))
    return shifts.repeat(2), torch.arange(2).repeat_interleave(len(shifts)).bool()


def inverse_shift(shift: torch.Tensor, reflect: torch.Tensor) -> torch.Tensor:
    """Shifts of the inverse elements: a shift is undone by its opposite; reflect-then-shift
    is an involution (``S_s R = R S_-s``), so it is its own inverse."""
    return torch.where(reflect, shift, -shift)


class SymmetryViews(nn.Module):
    """``forward(z (B, T, D), cond (B, 2)) -> (B, T, D)``: ``step`` averaged over the views."""

    def __init__(self, step: nn.Module, autoencoder: nn.Module, normalizer: Normalizer, views: int):
        super().__init__()
        self.step, self.autoencoder, self.normalizer = step, autoencoder, normalizer
        self.views = views
        self.patch = autoencoder.points // autoencoder.cfg.latent_tokens
        self.shift, self.reflect = view_elements(views, self.patch)

    def _apply(self, u: torch.Tensor, shift: torch.Tensor, reflect: torch.Tensor) -> torch.Tensor:
        """Normalised grids (V*B, X), each under its element (V*B,), in normalised units."""
        norm = self.normalizer
        return norm.transform(burgers_symmetry(norm.inverse(u), shift, reflect))

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        batch = len(z)
        shift = self.shift.to(z.device).repeat_interleave(batch)  # (V*B,), view-major
        reflect = self.reflect.to(z.device).repeat_interleave(batch)
        u = self.autoencoder.decode(z).repeat(self.views, 1)  # (V*B, X)
        seen = self.autoencoder.encode(self._apply(u, shift, reflect))
        stepped = self.autoencoder.decode(self.step(seen, cond.repeat(self.views, 1)))
        back = self._apply(stepped, inverse_shift(shift, reflect), reflect)
        return self.autoencoder.encode(back).unflatten(0, (self.views, batch)).mean(dim=0)
