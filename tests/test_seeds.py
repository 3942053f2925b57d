import json
import shutil

import numpy as np
import pytest

from tests.conftest import SMOKE_CONFIG
from ups.cli import main
from ups.config import ConfigError
from ups.records import RunMismatchError
from ups.seeds import (
    assign_devices,
    headline_metrics,
    headline_mode,
    run_seed,
    run_seeds,
)
from ups.summary import SeedResult, spread


def test_spread_matches_an_independent_computation():
    per_seed = {"0": {"a": 1.0, "b": -2.0}, "1": {"a": 2.0, "b": -2.0}, "2": {"a": 4.0, "b": -2.0}}
    stats = spread(per_seed)
    values = np.array([1.0, 2.0, 4.0])
    std = np.sqrt(((values - values.mean()) ** 2).sum() / 2)  # sample std by hand
    assert stats["a"]["mean"] == pytest.approx(7 / 3)
    assert stats["a"]["std"] == pytest.approx(std)
    assert stats["a"]["cv_pct"] == pytest.approx(100 * std / (7 / 3))
    assert (stats["a"]["min"], stats["a"]["max"]) == (1.0, 4.0)
    assert stats["b"]["std"] == 0.0 and stats["b"]["cv_pct"] == 0.0
    assert spread({"0": {"a": 3.0}})["a"]["std"] == 0.0


def test_headline_is_ttc_when_on_and_corrected_when_off():
    metrics = {
        "ttc/nrmse": 1.0,
        "ttc/conservation_gap": 2.0,
        "operator/nrmse": 3.0,
        "operator/conservation_gap": 3.5,
        "corrected/nrmse": 4.0,
        "corrected/conservation_gap": 5.0,
        "ttc/improvement_pct": 6.0,
        "ttc/score_error_spearman": 0.5,
    }
    on = headline_metrics(metrics, ttc_enabled=True)
    assert on["nrmse"] == 1.0 and on["conservation_gap"] == 2.0
    assert on["operator_conservation_gap"] == 3.5 and on["corrected_conservation_gap"] == 5.0
    off = headline_metrics(metrics, ttc_enabled=False)
    assert off["nrmse"] == 4.0 and "ttc_improvement_pct" not in off


@pytest.mark.determinism
def test_parallel_seeds_equal_sequential_ones(smoke_cache, tmp_path, capsys):
    args = [f"paths.data_cache={smoke_cache}", "tracking.wandb.mode=disabled"]
    assert (
        main(
            [
                "seeds",
                str(SMOKE_CONFIG),
                *args,
                "--seeds",
                "0",
                "1",
                "-j",
                "2",
                "--out",
                str(tmp_path / "par"),
            ]
        )
        == 0
    )
    assert "| nrmse |" in capsys.readouterr().out
    assert (
        main(["seeds", str(SMOKE_CONFIG), *args, "--seeds", "1", "--out", str(tmp_path / "seq")])
        == 0
    )
    par = json.loads((tmp_path / "par" / "seeds.json").read_text())
    seq = json.loads((tmp_path / "seq" / "seeds.json").read_text())
    assert par["per_seed"]["1"] == seq["per_seed"]["1"]  # bitwise: same numbers in JSON
    assert par["per_seed"]["0"] != par["per_seed"]["1"]
    assert par["stats"]["nrmse"]["mean"] == pytest.approx(
        (par["per_seed"]["0"]["nrmse"] + par["per_seed"]["1"]["nrmse"]) / 2
    )


def test_devices_round_robin_and_missing_gpus_fall_back_to_cpu():
    assert assign_devices([0, 1, 2], ["cuda:0", "1"], gpus=2) == ["cuda:0", "cuda:1", "cuda:0"]
    assert assign_devices([5, 6], ["cpu"], gpus=0) == ["cpu", "cpu"]
    with pytest.warns(RuntimeWarning, match="cuda:1 not available .1 CUDA device"):
        assert assign_devices([0, 1, 2], ["cuda", "cuda:1"], gpus=1) == ["cuda:0", "cpu", "cuda:0"]
    with pytest.raises(ConfigError, match="'gpu0' is not 'cpu', 'cuda"):
        assign_devices([0], ["gpu0"], gpus=1)


def test_a_config_without_its_corrector_stage_is_refused_before_training(tmp_path, capsys):
    args = ["seeds", str(SMOKE_CONFIG), "stages=[autoencoder,operator]", "--seeds", "0"]
    assert main([*args, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "lack 'diffusion' (eval.corrector)" in err and "add it to stages" in err
    assert not (tmp_path / "s" / "seed0").exists()


def test_cli_seeds_on_absent_gpus_run_as_cpu_processes(smoke_cache, tmp_path, monkeypatch):
    calls = []

    def fake_run_seed(config, overrides, seed, out):
        calls.append((seed, overrides[-1]))
        return SeedResult({"nrmse": 1.0 + seed, "conservation_gap": 0.5})

    monkeypatch.setattr("ups.seeds.run_seed", fake_run_seed)
    monkeypatch.setattr("ups.seeds._cuda_count", lambda: 0)  # this machine: no CUDA
    args = ["seeds", str(SMOKE_CONFIG), f"paths.data_cache={smoke_cache}", "--seeds", "0", "1"]
    with pytest.warns(RuntimeWarning, match="cuda:0, cuda:1 not available"):
        code = main([*args, "--devices", "0", "1", "-j", "1", "--out", str(tmp_path / "s")])
    assert code == 0
    assert calls == [(0, "device=cpu"), (1, "device=cpu")]
    summary = json.loads((tmp_path / "s" / "seeds.json").read_text())
    assert summary["devices"] == {"0": "cpu", "1": "cpu"}
    assert summary["headline"] == headline_mode(ttc_enabled=True)  # the smoke config has TTC on
    assert summary["stats"]["nrmse"]["mean"] == 1.5


def test_the_dataset_is_built_once_before_any_seed_starts(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    seen = []

    def fake_run_seed(config, overrides, seed, out):
        seen.append(sorted(p.name for p in cache.iterdir()))
        return SeedResult({"nrmse": 1.0, "conservation_gap": 0.5})

    monkeypatch.setattr("ups.seeds.run_seed", fake_run_seed)
    overrides = [f"paths.data_cache={cache}"]
    run_seeds(SMOKE_CONFIG, [0, 1], tmp_path / "s", overrides, jobs=1)
    assert len(seen) == 2 and len(seen[0]) == 1 and seen[0][0].startswith("burgers-")


def test_a_finished_seed_is_evaluated_as_the_requested_config_asks(
    smoke_run, smoke_cache, tmp_path
):
    # The seed folder's own config.yaml says eval.split=test; the request says val: the seed is
    # not retrained, and its evaluation follows the request, not the stored config.
    shutil.copytree(smoke_run, tmp_path / "out" / "seed0")
    base = [f"paths.data_cache={smoke_cache}", f"paths.runs={tmp_path}"]
    result = run_seed(str(SMOKE_CONFIG), [*base, "eval.split=val"], 0, str(tmp_path / "out"))
    val = json.loads((tmp_path / "out" / "seed0" / "eval" / "val" / "metrics.json").read_text())
    assert result.metrics["nrmse"] == val[f"{headline_mode(True)}/nrmse"]  # smoke: TTC on
    assert len(result.per_trajectory["nrmse"]) == val["trajectories"]


def test_a_seed_folder_trained_otherwise_is_refused_by_key(smoke_run, smoke_cache, tmp_path):
    shutil.copytree(smoke_run, tmp_path / "out" / "seed0")
    overrides = [f"paths.data_cache={smoke_cache}", "operator.train.lr=0.5"]
    with pytest.raises(RunMismatchError, match=r"operator\.train\.lr: .* -> 0\.5.*--out"):
        run_seed(str(SMOKE_CONFIG), overrides, 0, str(tmp_path / "out"))
