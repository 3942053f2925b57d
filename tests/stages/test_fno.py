"""The FNO baseline stage on the smoke config: trained alone, it writes only its own checkpoint,
logs history, beats persistence on val, and is reproducible across a kill and a resume."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import train_killed_then_resumed, train_smoke
from ups.config import load_config
from ups.data.dataset import load_dataset
from ups.metrics import nrmse
from ups.records import RunRecord, read_run
from ups.repro import torch_generator
from ups.stages.context import StageContext
from ups.stages.fno import FnoStage, fno_rollout, load_fno
from ups.train import checkpoint

EPOCH_KEYS = {
    "train_loss",
    "one_step",
    "rollout",
    "val_loss",
    "val_score",
    "val_rollout_nrmse",
    "val_conservation_gap",
    "lr",
    "grad_norm_mean",
    "best_so_far",
}


def _ctx(run_dir, overrides=()):
    cfg = load_config(run_dir / "config.yaml", list(overrides))
    return StageContext.from_dataset(
        cfg, load_dataset(cfg.data, cfg.paths.data_cache), RunRecord(run_dir)
    )


def _first_batch(stage):
    return next(iter(stage.batches(torch_generator(0, "test/loader"))))


def test_trained_alone_it_writes_only_its_checkpoint_history_and_metrics(fno_run):
    run = read_run(fno_run)
    assert run.status == "finished" and run.config.stages == ["fno"]
    assert sorted(p.name for p in (fno_run / "checkpoints").iterdir()) == ["fno.last.pt", "fno.pt"]
    rows = [r for r in run.history if r["stage"] == "fno"]
    assert len(rows) == len(run.history) == run.config.fno.train.epochs
    assert [r["epoch"] for r in rows] == list(range(len(rows)))
    assert all(row.keys() >= EPOCH_KEYS for row in rows)
    best = run.metrics["fno"]
    assert best["best_val"]["score"] == min(r["val_score"] for r in rows)
    saved = torch.load(fno_run / "checkpoints" / "fno.pt", weights_only=True)
    assert saved["epoch"] == best["best_epoch"]
    ctx = _ctx(fno_run)
    assert saved["normalizer"] == ctx.normalizer.to_dict()


def test_val_rollout_beats_persistence_and_reloads_to_the_recorded_score(fno_run):
    ctx = _ctx(fno_run)
    val = ctx.dataset.val  # (N, T, X), physical
    persistence = nrmse(np.repeat(val[:, :1], val.shape[1] - 1, axis=1), val[:, 1:])
    recorded = read_run(fno_run).metrics["fno"]["best_val"]["rollout_nrmse"]
    assert recorded < 0.5 * persistence
    # The recorded score is the score of the saved model through the one rollout path.
    model = load_fno(ctx)
    with torch.no_grad():
        pred = fno_rollout(model, ctx.val[:, 0], ctx.cond(len(val)), val.shape[1] - 1)
    assert pred.shape == ctx.val[:, 1:].shape
    assert nrmse(ctx.physical(pred), val[:, 1:]) == pytest.approx(recorded, rel=1e-9)


def test_fno_rollout_feeds_each_prediction_back():
    u0 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    cond = torch.tensor([[0.5, 0.01], [0.25, 0.01]])
    out = fno_rollout(lambda u, c: 2 * u + c[:, :1], u0, cond, 3)
    assert out.shape == (2, 3, 2)
    expected = [2 * u0 + cond[:, :1]]
    for _ in range(2):
        expected.append(2 * expected[-1] + cond[:, :1])
    torch.testing.assert_close(out, torch.stack(expected, dim=1))


def test_the_baseline_holds_no_upstream_model(fno_run):
    stage = FnoStage(_ctx(fno_run))
    assert not [
        m for m in vars(stage).values() if isinstance(m, nn.Module) and m is not stage.model
    ]


def test_terms_follow_weights_and_horizon(fno_run):
    stage = FnoStage(_ctx(fno_run))
    batch = _first_batch(stage)
    assert batch.shape[1] == stage.horizon + 1
    assert set(stage.losses(batch, torch_generator(0, "n"))) == {"one_step", "rollout"}
    stage.cfg = replace(stage.cfg, rollout_weight=0.0)
    assert set(stage.losses(batch, torch_generator(0, "n"))) == {"one_step"}
    one = FnoStage(_ctx(fno_run, ["fno.rollout_horizon=1"]))
    assert set(one.losses(_first_batch(one), torch_generator(0, "n"))) == {"one_step"}
    with pytest.raises(ValueError, match=r"fno\.rollout_horizon=11 exceeds the 10 steps"):
        FnoStage(_ctx(fno_run, ["fno.rollout_horizon=11"]))


def test_without_unroll_gradient_the_rollout_term_still_trains_every_parameter(fno_run):
    stage = FnoStage(_ctx(fno_run))
    trained = checkpoint.load(fno_run / "checkpoints" / "fno.pt", stage.ctx.cfg)["model"]
    stage.model.load_state_dict(trained)  # a fresh model's zero head would block the gradient
    batch = _first_batch(stage)
    grads = {}
    for unroll in (True, False):
        stage.cfg = replace(stage.cfg, unroll_gradient=unroll)
        stage.model.zero_grad(set_to_none=True)
        stage.losses(batch, torch_generator(0, "n"))["rollout"].backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in stage.model.parameters())
        grads[unroll] = [p.grad.clone() for p in stage.model.parameters()]
    # Detaching between steps drops the paths through earlier steps: other gradients.
    assert any(not torch.allclose(a, b) for a, b in zip(grads[True], grads[False], strict=True))


def _weights(run_dir):
    return torch.load(run_dir / "checkpoints" / "fno.pt", weights_only=True)["model"]


def _history(run_dir):
    rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in rows]


@pytest.mark.determinism
def test_same_seed_and_a_kill_and_resume_are_bitwise_identical(
    fno_run, smoke_overrides, tmp_path, monkeypatch
):
    overrides = [*smoke_overrides, "stages=[fno]"]
    again = train_smoke(tmp_path / "again", overrides)
    expected, got = _weights(fno_run), _weights(again)
    assert all(torch.equal(v, got[k]) for k, v in expected.items())
    assert _history(again) == _history(fno_run)

    # Killed at the 4th write: after epoch 0's best and last checkpoints, mid-run.
    killed = train_killed_then_resumed(tmp_path / "killed", overrides, monkeypatch, nth=4)
    got = _weights(killed)
    assert all(torch.equal(v, got[k]) for k, v in expected.items())
    assert _history(killed) == _history(fno_run)
