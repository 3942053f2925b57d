"""Same config + seed => bitwise-identical runs, also across a kill and a resume."""

import json

import pytest
import torch

from tests.conftest import train_killed_then_resumed, train_smoke
from ups.records import read_run

pytestmark = pytest.mark.determinism


def _weights(run_dir):
    return {
        stage: torch.load(run_dir / "checkpoints" / f"{stage}.pt", weights_only=True)["model"]
        for stage in read_run(run_dir).config.stages
    }


def _assert_bitwise_equal(a, b):
    assert a.keys() == b.keys()
    for stage in a:
        assert a[stage].keys() == b[stage].keys()
        for key in a[stage]:
            assert torch.equal(a[stage][key], b[stage][key]), f"{stage}.{key}"


def _metrics_without_timing(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        stage: {k: v for k, v in m.items() if k != "wall_seconds"} for stage, m in metrics.items()
    }


def _history_without_timing(run_dir):
    rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in rows]


def test_same_seed_twice_is_bitwise_identical(smoke_run, smoke_overrides, tmp_path):
    again = train_smoke(tmp_path / "again", smoke_overrides)
    _assert_bitwise_equal(_weights(smoke_run), _weights(again))
    assert _metrics_without_timing(again) == _metrics_without_timing(smoke_run)
    assert _history_without_timing(again) == _history_without_timing(smoke_run)


def test_other_seed_gives_other_weights(smoke_run, smoke_overrides, tmp_path):
    other = train_smoke(tmp_path / "other", [*smoke_overrides, "stages=[autoencoder]", "seed=1"])
    first = torch.load(smoke_run / "checkpoints" / "autoencoder.pt", weights_only=True)["model"]
    second = torch.load(other / "checkpoints" / "autoencoder.pt", weights_only=True)["model"]
    assert any(not torch.equal(first[k], second[k]) for k in first)


# Kill points: the n-th checkpoint write of each stage (every epoch writes its 'last'
# checkpoint and, when it improved, its 'best' one first).
@pytest.mark.parametrize(
    ("stage", "nth"), [("autoencoder", 3), ("operator", 2), ("diffusion", 4), ("consistency", 2)]
)
def test_kill_and_resume_is_bitwise_identical(
    smoke_run, smoke_overrides, tmp_path, monkeypatch, stage, nth
):
    run_dir = tmp_path / "killed"
    train_killed_then_resumed(run_dir, smoke_overrides, monkeypatch, nth, prefix=f"{stage}.")
    _assert_bitwise_equal(_weights(smoke_run), _weights(run_dir))
    assert _history_without_timing(run_dir) == _history_without_timing(smoke_run)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


def test_golden_operator_recipe_resumes_bitwise(smoke_overrides, tmp_path, monkeypatch):
    # Relative positions, per-sample amplitude, and augmentation drawn from the loader stream,
    # which the checkpoint carries: a killed and resumed operator equals an uninterrupted one.
    overrides = [
        *smoke_overrides,
        "stages=[autoencoder,operator]",
        "operator.model.position=relative",
        "operator.model.amplitude=capped",
        "operator.augment=true",
    ]
    whole = train_smoke(tmp_path / "whole", overrides)
    killed = tmp_path / "killed"
    train_killed_then_resumed(killed, overrides, monkeypatch, 2, prefix="operator.")
    _assert_bitwise_equal(_weights(whole), _weights(killed))
    assert _history_without_timing(killed) == _history_without_timing(whole)
