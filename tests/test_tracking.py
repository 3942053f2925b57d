import sys
import warnings

import pytest

from tests.conftest import SMOKE_CONFIG
from ups.config import config_hash, load_config, to_dict
from ups.records import RunRecord, read_run
from ups.session import open_session
from ups.tracking import WandbMirror, wandb_config
from ups.wandb_offline import find_offline_runs, read_offline_run


def test_wandb_config_is_full_nested_config_plus_hash_and_seed():
    cfg = load_config(SMOKE_CONFIG, ["seed=9"])
    wb = wandb_config(cfg)
    assert wb["data"] == to_dict(cfg)["data"] and wb["data"]["points"] == 32
    assert wb["config_hash"] == config_hash(cfg) and wb["seed"] == 9


def test_offline_run_holds_nested_config_and_metrics(smoke_overrides):
    cfg = load_config(SMOKE_CONFIG, smoke_overrides + ["seed=5"])
    with open_session(cfg) as session:
        assert session.mirror.active
        session.log("data", 0, n_train=cfg.data.n_train)
        session.finish_metrics({"nrmse": 0.125})
    files = find_offline_runs(session.record.path)
    assert len(files) == 1
    offline = read_offline_run(files[0])
    config = offline["config"]
    assert config["data"]["points"] == 32 and config["data"]["nu"] == 0.01
    assert config["seed"] == 5 and config["config_hash"] == config_hash(cfg)
    assert {"data/n_train": 32, "data/epoch": 0}.items() <= offline["history"][0].items()
    assert offline["summary"]["nrmse"] == 0.125
    assert read_run(session.record.path).status == "finished"


def test_wandb_failure_warns_once_and_local_record_survives(smoke_overrides, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    cfg = load_config(SMOKE_CONFIG, smoke_overrides)
    with (
        pytest.warns(RuntimeWarning, match="W&B mirror disabled") as caught,
        open_session(cfg) as session,
    ):
        session.log("data", 0, value=1.0)
    assert len([w for w in caught if "W&B" in str(w.message)]) == 1
    run = read_run(session.record.path)
    assert run.status == "finished" and run.history[0]["value"] == 1.0


def test_disabled_mode_starts_nothing(smoke_overrides, tmp_path):
    cfg = load_config(SMOKE_CONFIG, smoke_overrides + ["tracking.wandb.mode=disabled"])
    record = RunRecord.create(cfg, tmp_path / "run")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mirror = WandbMirror(cfg, record)
    assert not mirror.active and not (record.path / "wandb").exists()


def test_failed_session_is_recorded_as_failed(smoke_overrides):
    cfg = load_config(SMOKE_CONFIG, smoke_overrides + ["tracking.wandb.mode=disabled"])
    with pytest.raises(RuntimeError, match="boom"), open_session(cfg) as session:
        raise RuntimeError("boom")
    run = read_run(session.record.path)
    assert run.status == "failed" and "boom" in run.info["error"]
