"""The training symmetries of periodic Burgers: exact, as the reference solver says, and seeded."""

import numpy as np
import pytest
import torch

from ups.data.augment import burgers_symmetry, random_symmetry
from ups.physics.burgers import solve_burgers

EPS = 0.01 / np.pi
POINTS = 64
X = np.arange(POINTS) / POINTS
TIMES = np.array([0.0, 0.2, 0.4])


def _solutions() -> np.ndarray:
    """(2, 3, 64): two asymmetric reference trajectories (a shock forms in the first)."""
    u0 = np.stack(
        [
            np.sin(2 * np.pi * X) + 0.5 * np.cos(4 * np.pi * X + 1.0) + 0.2,
            0.4 * np.sin(6 * np.pi * X + 2.0) - 0.3 * np.cos(2 * np.pi * X),
        ]
    )
    return solve_burgers(u0, EPS, TIMES, dt_max=1e-3)


@pytest.mark.parametrize("reflect", [False, True])
@pytest.mark.parametrize("shift", [0, 5, 37])
def test_symmetry_maps_solutions_to_solutions(shift, reflect):
    u = _solutions()
    moved = burgers_symmetry(
        torch.from_numpy(u), torch.tensor([shift, shift]), torch.tensor([reflect, reflect])
    ).numpy()
    resolved = solve_burgers(moved[:, 0], EPS, TIMES, dt_max=1e-3)
    np.testing.assert_allclose(resolved, moved, atol=1e-10)
    if shift or reflect:
        assert np.abs(moved - u).max() > 0.1


def test_shift_and_reflection_on_grid_indices():
    u = torch.arange(8.0).repeat(2, 1)  # u[i] = i
    out = burgers_symmetry(u, torch.tensor([3, 0]), torch.tensor([False, True]))
    torch.testing.assert_close(out[0], torch.roll(u[0], 3))  # shifted right by 3 points
    torch.testing.assert_close(out[1], -u[1][(-torch.arange(8)) % 8])  # point i <- -i
    twice = burgers_symmetry(out[1:], torch.tensor([0]), torch.tensor([True]))
    torch.testing.assert_close(twice, u[1:])  # the reflection is an involution


def test_per_sample_transforms_of_windows():
    u = torch.randn(3, 4, 16, generator=torch.Generator().manual_seed(0))  # (B, frames, X)
    shift, reflect = torch.tensor([1, 0, 9]), torch.tensor([False, True, True])
    out = burgers_symmetry(u, shift, reflect)
    for b in range(3):
        single = burgers_symmetry(u[b : b + 1], shift[b : b + 1], reflect[b : b + 1])
        torch.testing.assert_close(out[b : b + 1], single)
    torch.testing.assert_close(out[0], torch.roll(u[0], 1, dims=-1))  # every frame alike


def test_random_symmetry_is_seeded_and_varied():
    u = torch.from_numpy(_solutions()[:1, 0]).repeat(64, 1)  # (64, X), mean 0.2
    a = random_symmetry(u, torch.Generator().manual_seed(0))
    assert torch.equal(a, random_symmetry(u, torch.Generator().manual_seed(0)))
    assert not torch.equal(a, random_symmetry(u, torch.Generator().manual_seed(1)))
    mass_ratio = a.mean(-1) / u.mean(-1)
    # Shifts keep the mass, the reflection flips its sign: both occur, and nothing else.
    torch.testing.assert_close(mass_ratio.abs(), torch.ones(64, dtype=u.dtype))
    assert (mass_ratio > 0).any() and (mass_ratio < 0).any()
