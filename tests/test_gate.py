"""The gate's rules on hand-made summaries, and on real smoke runs broken on purpose."""

import copy
import json
import shutil

import pytest
import torch

from tests.conftest import SMOKE_CONFIG
from ups import gate
from ups.cli import main
from ups.seeds import run_seeds, spread

ENV = {"python": "3.11", "torch": "2.13.0", "numpy": "2", "cpu": "x", "threads": 1}


def summary(nrmse, gap, env=ENV, config_hash="abc"):
    per_seed = {
        str(s): {"nrmse": n, "conservation_gap": g}
        for s, (n, g) in enumerate(zip(nrmse, gap, strict=True))
    }
    return {
        "config": "c.yaml",
        "config_name": "toy",
        "config_hash": config_hash,
        "seeds": list(range(len(nrmse))),
        "environment": env,
        "per_seed": per_seed,
        "stats": spread(per_seed),
    }


@pytest.fixture
def golden(tmp_path):
    path = tmp_path / "toy.json"
    base = summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2])
    return path, gate.update_baseline(path, base, previous=None)


def _failed(checks):
    return {(c.rule, c.metric) for c in checks if not c.passed}


def test_baseline_file_holds_thresholds_tolerance_baseline_and_provenance(golden):
    path, written = golden
    on_disk = json.loads(path.read_text())
    assert on_disk == written
    assert on_disk["thresholds"] == {"nrmse": 0.085, "conservation_gap": 2.0, "nrmse_cv_pct": 5.0}
    assert on_disk["tolerance"] == {"std_multiple": 3.0, "relative": 0.1}
    assert on_disk["baseline"]["stats"]["nrmse"]["mean"] == pytest.approx(0.051)
    prov = on_disk["provenance"]
    assert prov["seeds"] == [0, 1, 2] and prov["config_hash"] == "abc" and prov["date"]
    assert prov["versions"]["torch"] == torch.__version__


def test_the_same_numbers_pass_every_rule(golden):
    _, base = golden
    checks = gate.check(summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2]), base)
    assert not _failed(checks)
    assert {c.rule for c in checks} == {"threshold", "regression", "reproducibility"}


def test_regression_tolerance_is_max_of_3_std_and_10_percent(golden):
    _, base = golden
    other_env = {**ENV, "cpu": "y"}  # another machine: exact reproduction is not asked
    # Baseline nRMSE 0.051 +- 0.001: 3 std = 0.003 < 10% = 0.0051, so the limit is 0.0561.
    ok = gate.check(summary([0.055, 0.056, 0.0555], [1.0, 1.1, 1.2], other_env), base)
    assert not _failed(ok)
    bad = gate.check(summary([0.057, 0.0575, 0.058], [1.0, 1.1, 1.2], other_env), base)
    assert _failed(bad) == {("regression", "nrmse mean")}


def test_thresholds_fail_naming_seed_and_cv(golden):
    _, base = golden
    checks = gate.check(summary([0.05, 0.09, 0.05], [1.0, 2.5, 1.2], {**ENV, "cpu": "y"}), base)
    failed = _failed(checks)
    assert ("threshold", "nrmse (seed 1)") in failed
    assert ("threshold", "conservation_gap (seed 1)") in failed
    assert ("threshold", "nrmse CV % across seeds") in failed


def test_same_environment_demands_exact_reproduction(golden):
    _, base = golden
    checks = gate.check(summary([0.050, 0.0510001, 0.052], [1.0, 1.1, 1.2]), base)
    assert _failed(checks) == {("reproducibility", "nrmse (seed 1) vs baseline")}


def test_another_config_is_reported_not_compared(golden):
    _, base = golden
    checks = gate.check(summary([0.05] * 3, [1.0] * 3, config_hash="zzz"), base)
    assert ("identity", "config_hash differs from the golden's") in _failed(checks)
    assert not any(c.rule == "regression" for c in checks)


def test_markdown_table_names_rule_value_limit_and_verdict(golden):
    _, base = golden
    s = summary([0.05, 0.09, 0.05], [1.0, 1.1, 1.2])
    table = gate.markdown_table(gate.check(s, base), s)
    assert "FAILED" in table and "| threshold | nrmse (seed 1) | 0.09 | 0.085 |" in table
    assert "| nrmse | 0.05 | 0.09 | 0.05 |" in table


def test_update_refuses_seeds_that_fail_a_threshold(tmp_path, capsys):
    # CV 9.1% across the seeds: over the 5% limit, so no baseline may be made of them.
    spread_out = summary([0.050, 0.055, 0.060], [1.0, 1.1, 1.2])
    with pytest.raises(gate.BaselineRejectedError, match=r"nrmse CV % across seeds = 9\.09"):
        gate.update_baseline(tmp_path / "toy.json", spread_out, previous=None)
    assert not (tmp_path / "toy.json").exists()

    summary_file = tmp_path / "seeds.json"
    summary_file.write_text(json.dumps(spread_out))
    args = ["gate", str(SMOKE_CONFIG), "--summary", str(summary_file), "--update"]
    assert main([*args, "--golden-dir", str(tmp_path)]) == 2
    assert "not written: the seeds fail nrmse CV" in capsys.readouterr().err
    assert not (tmp_path / "burgers_smoke.json").exists()


def test_missing_golden_fails_with_the_update_command(tmp_path, capsys):
    assert main(["gate", str(SMOKE_CONFIG), "--golden-dir", str(tmp_path)]) == 2
    assert "ups gate CONFIG --update" in capsys.readouterr().err


# --- real smoke runs -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_baseline(smoke_cache, tmp_path_factory):
    """Seed 0 of the smoke config trained and evaluated, and a golden file made from it whose
    thresholds fit the tiny smoke model (the rules under test are regression and reproduction)."""
    root = tmp_path_factory.mktemp("gate")
    overrides = [f"paths.data_cache={smoke_cache}", "tracking.wandb.mode=disabled"]
    base = run_seeds(SMOKE_CONFIG, [0], root / "seeds", overrides)
    smoke = {
        "thresholds": {"nrmse": 10.0, "conservation_gap": 100.0, "nrmse_cv_pct": 5.0},
        "tolerance": gate.DEFAULT_TOLERANCE,
    }
    golden = gate.update_baseline(root / "burgers_smoke.json", base, previous=smoke)
    return root, overrides, golden


def _rerun(smoke_baseline, tmp_path, retrain=False):
    root, overrides, golden = smoke_baseline
    out = tmp_path / "seeds"
    if not retrain:  # reuse the trained seed: only evaluation runs again
        shutil.copytree(root / "seeds", out)
        (out / "seed0" / "metrics.json").unlink()
    return gate.check(run_seeds(SMOKE_CONFIG, [0], out, overrides), copy.deepcopy(golden))


def test_unbroken_rerun_passes(smoke_baseline, tmp_path):
    assert not _failed(_rerun(smoke_baseline, tmp_path))


def test_gate_catches_a_zeroed_corrector(smoke_baseline, tmp_path, monkeypatch):
    from ups.eval.surrogate import Surrogate

    load = Surrogate.load.__func__

    def zero_corrector(cls, ctx, corrector):
        surrogate = load(cls, ctx, corrector)
        surrogate.sampler = lambda model, zhat, cond, generator, scale: torch.zeros_like(zhat)
        return surrogate

    monkeypatch.setattr(Surrogate, "load", classmethod(zero_corrector))
    assert ("regression", "nrmse mean") in _failed(_rerun(smoke_baseline, tmp_path))


def test_gate_catches_a_random_encoder(smoke_baseline, tmp_path, monkeypatch):
    import ups.eval.surrogate as surrogate_module
    from ups.stages.autoencoder import build_autoencoder

    monkeypatch.setattr(surrogate_module, "load_autoencoder", build_autoencoder)  # untrained
    assert ("regression", "nrmse mean") in _failed(_rerun(smoke_baseline, tmp_path))


def test_gate_catches_a_dropped_seed(smoke_baseline, tmp_path, monkeypatch):
    import secrets

    import ups.repro

    monkeypatch.setattr(ups.repro, "stream_seed", lambda seed, stream: secrets.randbits(63))
    failed = _failed(_rerun(smoke_baseline, tmp_path, retrain=True))
    assert any(rule == "reproducibility" for rule, _ in failed)
