"""Random exact symmetries of periodic viscous Burgers, for training windows.

Both maps send solutions to solutions and PDEBench's initial-condition distribution to itself,
so a window transformed by them is as true a training sample as the stored one:

- periodic translation ``u(x, t) -> u(x - s, t)``, ``s`` a whole number of grid points;
- reflection ``u(x, t) -> -u(-x, t)``; on the stored grid (values at ``x_i = i / X``) it maps
  point ``i`` to point ``-i mod X``.
"""

from __future__ import annotations

import torch


def burgers_symmetry(u: torch.Tensor, shift: torch.Tensor, reflect: torch.Tensor) -> torch.Tensor:
    """Physical fields ``u`` (B, ..., X), each reflected where ``reflect`` (B,) is true, then
    shifted right by ``shift`` (B,) grid points (periodic); same shape as ``u``."""
    batch, points = u.shape[0], u.shape[-1]
    per_sample = (batch,) + (1,) * (u.dim() - 1)
    mirrored = -torch.roll(u.flip(-1), 1, dims=-1)
    u = torch.where(reflect.view(per_sample), mirrored, u)
    index = (torch.arange(points, device=u.device) - shift.to(u.device)[:, None]) % points
    return torch.gather(u, -1, index.view(batch, *per_sample[1:-1], points).expand_as(u))


def random_symmetry(u: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """:func:`burgers_symmetry` with a uniform shift and a fair-coin reflection per sample,
    drawn from ``generator`` (a CPU generator: the loader stream)."""
    batch, points = u.shape[0], u.shape[-1]
    shift = torch.randint(points, (batch,), generator=generator)
    reflect = torch.randint(2, (batch,), generator=generator).bool().to(u.device)
    return burgers_symmetry(u, shift, reflect)
