import random

import numpy as np
import pytest
import torch

from ups.config import load_config, stage_hash
from ups.train import checkpoint
from ups.train.checkpoint import CheckpointMismatchError

SMOKE = "configs/burgers_smoke.yaml"


def test_save_stamps_the_stage_hash_and_load_returns_the_payload(tmp_path):
    cfg = load_config(SMOKE)
    path = tmp_path / "operator.pt"
    checkpoint.save(path, {"stage": "operator", "model": {"w": torch.arange(3.0)}}, cfg)
    payload = checkpoint.load(path, cfg)
    assert torch.equal(payload["model"]["w"], torch.tensor([0.0, 1.0, 2.0]))
    assert payload["stage_hash"] == stage_hash(cfg, "operator")
    assert payload["config"]["operator"]["rollout_horizon"] == cfg.operator.rollout_horizon


def test_settings_the_stage_does_not_read_may_change(tmp_path):
    cfg = load_config(SMOKE)
    path = tmp_path / "operator.pt"
    checkpoint.save(path, {"stage": "operator"}, cfg)
    later = load_config(SMOKE, ["eval.noise_scale=0.5", "diffusion.train.lr=0.1"])
    assert checkpoint.load(path, later)["stage"] == "operator"


def test_a_config_that_trains_the_stage_differently_is_refused_by_key(tmp_path):
    cfg = load_config(SMOKE)
    path = tmp_path / "operator.pt"
    checkpoint.save(path, {"stage": "operator"}, cfg)
    other = load_config(SMOKE, ["operator.train.lr=0.5"])
    with pytest.raises(CheckpointMismatchError, match=r"operator\.train\.lr: 0\.002 -> 0\.5"):
        checkpoint.load(path, other)


def _rewrite(path, edit):
    """Edit a saved checkpoint's payload in place, as an older or newer ups would have written."""
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, path)


def test_a_key_the_schema_gained_since_the_checkpoint_is_named(tmp_path):
    # Written by a ups whose schema had no operator.rollout_weight (and so another stage hash):
    # the refusal names the key the checkpoint's config lacks, not an empty list.
    cfg = load_config(SMOKE)
    path = tmp_path / "operator.pt"
    checkpoint.save(path, {"stage": "operator"}, cfg)

    def older(payload):
        del payload["config"]["operator"]["rollout_weight"]
        payload["stage_hash"] = "0" * 64

    _rewrite(path, older)
    with pytest.raises(CheckpointMismatchError, match=r"operator\.rollout_weight: None -> "):
        checkpoint.load(path, cfg)


def test_a_hash_that_changed_with_no_key_says_so(tmp_path):
    cfg = load_config(SMOKE)
    path = tmp_path / "operator.pt"
    checkpoint.save(path, {"stage": "operator"}, cfg)
    _rewrite(path, lambda payload: payload.update(stage_hash="0" * 64))
    with pytest.raises(CheckpointMismatchError, match="no key differs.*--stage operator"):
        checkpoint.load(path, cfg)


def test_a_file_without_a_stage_is_not_a_stage_checkpoint(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"model": {}}, path)
    with pytest.raises(CheckpointMismatchError, match="names no stage"):
        checkpoint.load(path, load_config(SMOKE))
    with pytest.raises(FileNotFoundError, match="missing"):
        checkpoint.load(tmp_path / "absent.pt", load_config(SMOKE))


def test_rng_state_round_trips_every_generator():
    gen = torch.Generator().manual_seed(7)
    state = checkpoint.rng_state({"loader": gen})
    expected = (torch.rand(2), np.random.rand(2), random.random(), torch.rand(2, generator=gen))
    checkpoint.restore_rng_state(state, {"loader": gen})
    again = (torch.rand(2), np.random.rand(2), random.random(), torch.rand(2, generator=gen))
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2] == again[2] and torch.equal(expected[3], again[3])
