"""Training windows and loss weights shared by the operator and the FNO baseline."""

import numpy as np
import pytest
import torch

from ups.config import load_config
from ups.data.dataset import load_dataset
from ups.metrics import nrmse_per_trajectory_step
from ups.records import RunRecord
from ups.repro import torch_generator
from ups.stages.context import StageContext, rollout_windows, weighted_mse, window_batches


def test_windows_are_every_fitting_trajectory_start_pair():
    u = torch.zeros(3, 7, 5)  # (N, T, X)
    windows = rollout_windows(u, horizon=4, stage="s")
    assert windows.shape == (3 * 3, 2)
    assert {tuple(w) for w in windows.tolist()} == {(n, s) for n in range(3) for s in range(3)}
    assert len(rollout_windows(u, horizon=6, stage="s")) == 3  # one window: the whole trajectory
    with pytest.raises(ValueError, match=r"s\.rollout_horizon=7 exceeds the 6 steps"):
        rollout_windows(u, horizon=7, stage="s")


def test_window_batches_cover_each_window_once_with_consecutive_frames():
    u = torch.arange(4 * 9, dtype=torch.float32).view(4, 9)  # frame value = 9 * n + t
    windows = rollout_windows(u, horizon=3, stage="s")
    seen = []
    for traj, frames in window_batches(windows, 3, 5, torch_generator(0, "test")):
        assert traj.shape[1] == 1 and frames.shape[1] == 4 and len(traj) <= 5
        rows = u[traj, frames]  # (B, 4)
        assert torch.equal(rows - rows[:, :1], torch.arange(4.0).expand_as(rows))
        seen += rows[:, 0].tolist()
    assert sorted(seen) == sorted((9 * n + s) for n in range(4) for s in range(6))


def test_relative_weights_turn_the_loss_into_the_squared_physical_nrmse(smoke_run):
    cfg = load_config(smoke_run / "config.yaml")
    ctx = StageContext.from_dataset(
        cfg, load_dataset(cfg.data, cfg.paths.data_cache), RunRecord(smoke_run)
    )
    true = ctx.val[:, 1:].double()  # (N, T, X) normalised
    pred = true + 0.05 * torch.randn(
        true.shape, generator=torch_generator(0, "test"), dtype=true.dtype
    )
    weights = ctx.frame_weights(true, "relative")
    expected = np.mean(nrmse_per_trajectory_step(ctx.physical(pred), ctx.physical(true)) ** 2)
    assert weights.shape == true.shape[:2]
    assert float(weighted_mse(pred, true, weights)) == pytest.approx(expected, rel=1e-9)
    assert ctx.frame_weights(true, "absolute") is None
    assert float(weighted_mse(pred, true, None)) == pytest.approx(
        float(((pred - true) ** 2).mean())
    )
