"""The shared training loop: non-finite stops, early stopping, checkpoint identity."""

import json
import math

import pytest
import torch
from torch import nn

from tests.conftest import SMOKE_CONFIG, train_smoke
from ups.config import load_config
from ups.session import open_session
from ups.stages.autoencoder import AutoencoderStage
from ups.train import checkpoint
from ups.train.checkpoint import CheckpointMismatchError
from ups.train.loop import NonFiniteLossError, fit


def test_nan_in_a_batch_stops_the_run_naming_stage_epoch_step(
    smoke_overrides, tmp_path, monkeypatch
):
    clean = AutoencoderStage.batches

    def poisoned(self, generator):
        for step, batch in enumerate(clean(self, generator)):
            if self.poison_epoch == self.epochs_seen and step == 2:
                batch = batch.clone()
                batch[0, 5] = float("nan")
            yield batch
        self.epochs_seen += 1

    monkeypatch.setattr(AutoencoderStage, "poison_epoch", 1, raising=False)
    monkeypatch.setattr(AutoencoderStage, "epochs_seen", 0, raising=False)
    monkeypatch.setattr(AutoencoderStage, "batches", poisoned)
    run_dir = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match=r"stage 'autoencoder'.*epoch 1, step 2"):
        train_smoke(run_dir, [*smoke_overrides, "stages=[autoencoder]"])
    last = torch.load(run_dir / "checkpoints" / "autoencoder.last.pt", weights_only=True)
    best = torch.load(run_dir / "checkpoints" / "autoencoder.pt", weights_only=True)
    assert last["state"]["epoch"] == 1 and best["epoch"] == 0  # the last good epoch, intact
    assert all(torch.isfinite(v).all() for v in best["model"].values())
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "failed" and "NonFiniteLossError" in info["error"]


def test_checkpoint_of_another_config_is_refused_naming_the_difference(smoke_run):
    path = smoke_run / "checkpoints" / "autoencoder.pt"
    cfg = load_config(smoke_run / "config.yaml")
    assert checkpoint.load(path, cfg)["stage"] == "autoencoder"
    other = load_config(smoke_run / "config.yaml", ["autoencoder.train.lr=0.5"])
    with pytest.raises(CheckpointMismatchError, match=r"autoencoder\.train\.lr: 0\.002 -> 0\.5"):
        checkpoint.load(path, other)


def test_checkpoint_depends_only_on_what_its_stage_reads(smoke_run):
    """Evaluation settings and downstream sections may change; upstream ones may not."""
    ckpt = smoke_run / "checkpoints"
    downstream = ["ttc.candidates=3", "eval.split=val", "operator.train.lr=0.5", "name=other"]
    cfg = load_config(smoke_run / "config.yaml", downstream)
    assert checkpoint.load(ckpt / "autoencoder.pt", cfg)["stage"] == "autoencoder"
    upstream = load_config(smoke_run / "config.yaml", ["autoencoder.model.channels=8"])
    with pytest.raises(CheckpointMismatchError, match=r"autoencoder\.model\.channels: 16 -> 8"):
        checkpoint.load(ckpt / "consistency.pt", upstream)
    with pytest.raises(CheckpointMismatchError, match=r"data\.nu"):
        checkpoint.load(
            ckpt / "operator.pt", load_config(smoke_run / "config.yaml", ["data.nu=0.02"])
        )


def test_checkpoints_load_with_weights_only(smoke_run):
    for path in (smoke_run / "checkpoints").glob("*.pt"):
        payload = torch.load(path, weights_only=True)
        assert payload["config_hash"] and "model" in payload


class ScriptedStage:
    """A one-parameter stage whose validation scores follow a script."""

    name = "scripted"

    def __init__(self, scores, patience):
        from ups.schema import TrainConfig

        self.train_cfg = TrainConfig(epochs=len(scores), patience=patience, warmup_steps=0)
        self.model = nn.Linear(1, 1)
        self.scores = iter(scores)

    def steps_per_epoch(self):
        return 1

    def batches(self, generator):
        yield torch.ones(4, 1)

    def losses(self, batch, generator):
        return {"fit": (self.model(batch) - 2).pow(2).mean()}

    def validate(self, model):
        return {"score": next(self.scores)}

    def extra_state(self):
        return {}


def _session(tmp_path):
    cfg = load_config(SMOKE_CONFIG, ["tracking.wandb.mode=disabled"])
    return open_session(cfg, tmp_path / "run")


def test_patience_stops_early_and_keeps_the_best_epoch(tmp_path):
    with _session(tmp_path) as session:
        result = fit(ScriptedStage([3.0, 1.0, 2.0, 1.5, 0.5, 0.1], patience=2), session, False)
    assert result.best_epoch == 1 and result.best_val == {"score": 1.0}
    assert result.epochs_run == 4 and result.stopped_early
    saved = torch.load(session.record.checkpoint_path("scripted"), weights_only=True)
    assert saved["epoch"] == 1


def test_non_finite_validation_score_is_an_error(tmp_path):
    with pytest.raises(NonFiniteLossError, match="validation score"), _session(tmp_path) as s:
        fit(ScriptedStage([1.0, math.nan], patience=0), s, False)
