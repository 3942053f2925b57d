"""Symmetry views: the averaged step leaves a Burgers-exact step unchanged (reference solver),
smooths a step's non-symmetric part into its group average, and is refused where the grid has no
such views."""

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import SMOKE_CONFIG
from ups.config import ConfigError, load_config
from ups.data.augment import burgers_symmetry
from ups.data.normalize import Normalizer
from ups.eval.views import SymmetryViews, inverse_shift, view_elements
from ups.models.configs import AutoencoderConfig
from ups.models.patch_autoencoder import PatchAutoencoder
from ups.physics.burgers import solve_burgers

POINTS, TOKENS = 32, 8  # 4 grid points per token
EPS, DT = 0.01 / np.pi, 0.05
NORM = Normalizer(mean=0.3, std=2.0)  # an offset: the reflection must act on physical u
X = np.arange(POINTS) / POINTS


def _autoencoder() -> PatchAutoencoder:
    cfg = AutoencoderConfig(kind="patch", latent_tokens=TOKENS, latent_dim=POINTS // TOKENS)
    ae = PatchAutoencoder(cfg, POINTS, generator=torch.Generator().manual_seed(0))
    return ae.requires_grad_(False)


def _fields() -> np.ndarray:
    """(2, X) physical fields with no symmetry of their own."""
    return np.stack(
        [
            np.sin(2 * np.pi * X) + 0.5 * np.cos(4 * np.pi * X + 1.0) + 0.2,
            0.4 * np.sin(6 * np.pi * X + 2.0) - 0.3 * np.cos(2 * np.pi * X),
        ]
    )


class SolverStep(nn.Module):
    """One reference-solver step of DT in latent space: equivariant under every symmetry."""

    def __init__(self, autoencoder):
        super().__init__()
        self.autoencoder = autoencoder

    def forward(self, z, cond):
        u = NORM.inverse(self.autoencoder.decode(z).double().numpy())
        nxt = solve_burgers(u, EPS, np.array([0.0, DT]), dt_max=1e-3)[:, 1]
        return self.autoencoder.encode(torch.as_tensor(NORM.transform(nxt), dtype=torch.float32))


class BiasedStep(nn.Module):
    """``z`` plus a fixed grid pattern (normalised units): no symmetry at all."""

    def __init__(self, autoencoder, bias: np.ndarray):
        super().__init__()
        self.autoencoder, self.bias = autoencoder, torch.as_tensor(bias, dtype=torch.float32)

    def forward(self, z, cond):
        return self.autoencoder.encode(self.autoencoder.decode(z) + self.bias)


def _encode(ae, u: np.ndarray) -> torch.Tensor:
    return ae.encode(torch.as_tensor(NORM.transform(u), dtype=torch.float32))


def test_view_elements_start_with_the_identity_and_cover_shifts_inside_a_token():
    shift, reflect = view_elements(8, 4)
    assert shift.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert reflect.tolist() == [False] * 4 + [True] * 4
    shift, reflect = view_elements(4, 4)
    assert shift.tolist() == [0, 2, 0, 2] and reflect.tolist() == [False, False, True, True]
    assert view_elements(2, 4)[0].tolist() == [0, 0]
    assert view_elements(1, 4)[0].tolist() == [0] and not view_elements(1, 4)[1].any()
    for bad in (0, 3, 6, 16):
        with pytest.raises(ValueError, match="twice a divisor of 4"):
            view_elements(bad, 4)


@pytest.mark.parametrize("views", [2, 8])
def test_each_view_is_undone_by_its_inverse(views):
    u = torch.from_numpy(_fields()).repeat(views, 1)
    shift, reflect = (t.repeat_interleave(2) for t in view_elements(views, 4))
    moved = burgers_symmetry(u, shift, reflect)
    back = burgers_symmetry(moved, inverse_shift(shift, reflect), reflect)
    np.testing.assert_array_equal(back.numpy(), u.numpy())
    assert (moved[2:] - u[2:]).abs().amax(dim=-1).min() > 0.1  # every other view moves u


@pytest.mark.parametrize("views", [1, 2, 8])
def test_an_exact_step_is_left_unchanged(views):
    ae = _autoencoder()
    z = _encode(ae, _fields())
    step = SolverStep(ae)
    averaged = SymmetryViews(step, ae, NORM, views)(z, torch.zeros(2, 2))
    expected = step(z, None)
    assert (expected - z).abs().max() > 1e-2  # the step moves the state
    np.testing.assert_allclose(averaged.numpy(), expected.numpy(), atol=2e-5)


def test_a_non_symmetric_step_is_averaged_over_the_group():
    # F(z) = z + b: every view adds b in its own frame, so the average adds the mean of b
    # carried back by each inverse element: rolls of b, and rolls of its mirror -b(-x).
    ae = _autoencoder()
    bias = np.random.default_rng(0).normal(size=POINTS)
    u = _fields()
    averaged = SymmetryViews(BiasedStep(ae, bias), ae, NORM, 8)(_encode(ae, u), torch.zeros(2, 2))
    mirrored = -np.roll(bias[::-1], 1)  # b(-x) on the grid: point i -> -i mod X
    carried = [np.roll(bias, -s) for s in range(4)] + [np.roll(mirrored, s) for s in range(4)]
    expected = NORM.transform(u) + np.mean(carried, axis=0)
    got = ae.decode(averaged).numpy()
    np.testing.assert_allclose(got, np.broadcast_to(expected, got.shape), atol=1e-5)
    assert np.abs(np.mean(carried, axis=0) - bias).max() > 0.5  # not the plain step


def test_views_must_fit_the_grid_per_token():
    # The smoke grid: 32 points in 8 tokens, 4 points each.
    assert load_config(SMOKE_CONFIG, ["eval.views=8"]).eval.views == 8
    for bad in ("3", "6", "16", "0"):
        with pytest.raises(ConfigError, match="eval.views.*twice a divisor of the 4 grid points"):
            load_config(SMOKE_CONFIG, [f"eval.views={bad}"])
