"""``ups sweep``: the W&B spec, seeded local draws, and a local sweep of the smoke config."""

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, SMOKE_CONFIG
from ups.cli import main
from ups.config import ConfigError, load_config
from ups.sweep import SweepError, draw_trials, load_spec, overrides, rank

DIFFUSION_SPEC = REPO / "configs" / "sweeps" / "diffusion.yaml"


def write_spec(path: Path, **changes) -> Path:
    spec = {
        "method": "random",
        "metric": {"name": "diffusion/best_val_score", "goal": "minimize"},
        "parameters": {
            "diffusion.train.lr": {
                "distribution": "log_uniform_values",
                "min": 1.0e-4,
                "max": 3.0e-3,
            },
            "diffusion.train.epochs": {"values": [1, 2]},
            "diffusion.model.p_std": {"distribution": "uniform", "min": 0.8, "max": 1.6},
            "diffusion.model.sample_steps": {"distribution": "int_uniform", "min": 4, "max": 8},
            "diffusion.gap_weight": {"value": 1.0},
        },
        "command": ["${env}", "${interpreter}", "-m", "ups", "train", "${args_no_hyphens}"],
        **changes,
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_the_diffusion_spec_is_a_wandb_spec_over_validation_metrics():
    spec = load_spec(DIFFUSION_SPEC)
    assert spec.metric.name == "diffusion/best_val_score" and spec.metric.goal == "minimize"
    keys = set(spec.parameters)
    assert {"diffusion.train.lr", "diffusion.train.weight_decay", "diffusion.train.epochs"} <= keys
    assert {"diffusion.model.p_mean", "diffusion.model.p_std"} <= keys  # the noise schedule
    assert all(k.startswith("diffusion.") for k in keys)
    assert spec.command[0] == "${env}" and spec.command[-1] == "${args_no_hyphens}"
    raw = yaml.safe_load(DIFFUSION_SPEC.read_text())  # what wandb.sweep receives
    assert {"program", "method", "metric", "parameters", "command"} <= raw.keys()
    for trial in draw_trials(spec, 4, seed=0):  # every drawn trial is a valid config
        cfg = load_config(SMOKE_CONFIG, overrides(trial))
        assert cfg.diffusion.train.lr == trial["diffusion.train.lr"]


def test_random_draws_are_seeded_and_inside_their_distributions(tmp_path):
    spec = load_spec(write_spec(tmp_path / "s.yaml"))
    trials = draw_trials(spec, 20, seed=3)
    assert trials == draw_trials(spec, 20, seed=3)
    assert trials != draw_trials(spec, 20, seed=4)
    for t in trials:
        assert 1.0e-4 <= t["diffusion.train.lr"] <= 3.0e-3
        assert 0.8 <= t["diffusion.model.p_std"] <= 1.6
        assert t["diffusion.model.sample_steps"] in range(4, 9)
        assert isinstance(t["diffusion.model.sample_steps"], int)
        assert t["diffusion.train.epochs"] in (1, 2) and t["diffusion.gap_weight"] == 1.0
    assert {t["diffusion.model.sample_steps"] for t in trials} == set(range(4, 9))


def test_grid_walks_the_product_in_spec_order_truncated(tmp_path):
    params = {"diffusion.train.epochs": {"values": [1, 2]}, "seed": {"values": [5, 6, 7]}}
    spec = load_spec(write_spec(tmp_path / "g.yaml", method="grid", parameters=params))
    assert draw_trials(spec, 4, seed=0) == [
        {"diffusion.train.epochs": 1, "seed": 5},
        {"diffusion.train.epochs": 1, "seed": 6},
        {"diffusion.train.epochs": 1, "seed": 7},
        {"diffusion.train.epochs": 2, "seed": 5},
    ]
    assert len(draw_trials(spec, 100, seed=0)) == 6
    bad = load_spec(write_spec(tmp_path / "b.yaml", method="grid"))
    with pytest.raises(SweepError, match="diffusion.train.lr: a grid needs values"):
        draw_trials(bad, 2, seed=0)
    with pytest.raises(SweepError, match="method 'bayes' needs W&B"):
        draw_trials(load_spec(write_spec(tmp_path / "y.yaml", method="bayes")), 2, seed=0)


def test_bad_specs_name_the_key_and_the_file(tmp_path):
    both = {"diffusion.train.lr": {"values": [1.0], "distribution": "uniform", "min": 0, "max": 1}}
    path = write_spec(tmp_path / "both.yaml", parameters=both)
    with pytest.raises(ConfigError, match=r"both.yaml: key 'parameters.diffusion.train.lr.values'"):
        load_spec(path)
    with pytest.raises(ConfigError, match="key 'metric.goal'"):
        load_spec(write_spec(tmp_path / "g.yaml", metric={"name": "x", "goal": "best"}))
    with pytest.raises(ConfigError, match="early_terminate"):
        load_spec(write_spec(tmp_path / "u.yaml", early_terminate={"type": "hyperband"}))
    log0 = {"diffusion.train.lr": {"distribution": "log_uniform_values", "min": 0, "max": 1}}
    with pytest.raises(ConfigError, match="lr.min' must be > 0"):
        load_spec(write_spec(tmp_path / "l.yaml", parameters=log0))


def test_rank_sorts_by_the_goal_with_stable_ties():
    rows = [
        {"trial": 0, "objective": 2.0},
        {"trial": 1, "objective": 1.0},
        {"trial": 2, "objective": 2.0},
    ]
    assert [r["trial"] for r in rank(rows, "minimize")] == [1, 0, 2]
    assert [r["trial"] for r in rank(rows, "maximize")] == [0, 2, 1]
    assert [r["rank"] for r in rank(rows, "minimize")] == [1, 2, 3]


@pytest.mark.slow
def test_local_sweep_trains_upstream_once_and_ranks_trials_on_validation(
    smoke_cache, tmp_path, capsys
):
    spec = write_spec(tmp_path / "spec.yaml")
    out = tmp_path / "sweep"
    base = [
        f"paths.data_cache={smoke_cache}",
        "tracking.wandb.mode=disabled",
        "autoencoder.train.epochs=3",
        "operator.train.epochs=2",
    ]
    args = ["sweep", str(spec), *base, "--local", "--trials", "3", "--seed", "1"]
    assert main([*args, "--base", str(SMOKE_CONFIG), "--out", str(out), "--no-progress"]) == 0
    assert "| rank | trial | diffusion/best_val_score (minimize)" in capsys.readouterr().out

    result = json.loads((out / "sweep.json").read_text())
    ranked = result["ranked"]
    assert [r["rank"] for r in ranked] == [1, 2, 3]
    assert [r["objective"] for r in ranked] == sorted(r["objective"] for r in ranked)
    spec_obj = load_spec(spec)
    assert [r["params"] for r in sorted(ranked, key=lambda r: r["trial"])] == draw_trials(
        spec_obj, 3, seed=1
    )
    shared = (out / "shared" / "checkpoints" / "operator.pt").read_bytes()
    for row in ranked:
        run = Path(row["run"])
        metrics = json.loads((run / "metrics.json").read_text())
        best = metrics["diffusion"]["best_val"]
        assert row["objective"] == best["score"]  # the stage's own validation score
        assert row["rollout_nrmse"] == best["rollout_nrmse"]
        assert metrics["diffusion"]["epochs_run"] == row["params"]["diffusion.train.epochs"]
        assert (run / "checkpoints" / "operator.pt").read_bytes() == shared  # not retrained
        assert not (run / "checkpoints" / "consistency.pt").exists()
        cfg = load_config(run / "config.yaml")
        assert cfg.diffusion.train.lr == row["params"]["diffusion.train.lr"]
    table = (out / "sweep.md").read_text()
    assert table.count("\n| ") == 1 + 3  # header and one row per trial
    # Run again on the same folder: finished trials are kept, nothing retrains.
    before = (Path(ranked[0]["run"]) / "metrics.json").read_text()
    assert main([*args, "--base", str(SMOKE_CONFIG), "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "sweep.json").read_text())["ranked"] == ranked
    assert (Path(ranked[0]["run"]) / "metrics.json").read_text() == before


def test_a_wandb_sweep_without_credentials_is_a_clear_error(tmp_path, capsys):
    assert main(["sweep", str(DIFFUSION_SPEC), "--base", str(SMOKE_CONFIG)]) == 2
    assert "not logged in to W&B" in capsys.readouterr().err
