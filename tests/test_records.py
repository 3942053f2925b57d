import json

import pytest

from tests.conftest import SMOKE_CONFIG
from ups.config import config_hash, load_config
from ups.records import RunNotFoundError, RunRecord, read_run


@pytest.fixture
def cfg(tmp_path):
    return load_config(SMOKE_CONFIG, [f"paths.runs={tmp_path / 'runs'}", "seed=4"])


def test_create_writes_config_and_run_info(cfg):
    record = RunRecord.create(cfg)
    assert record.path.parent.name == "runs" and "-s4-" in record.path.name
    info = json.loads((record.path / "run.json").read_text())
    assert info["seed"] == 4 and info["status"] == "running"
    assert info["config_hash"] == config_hash(cfg)
    assert info["environment"]["torch"]
    assert load_config(record.path / "config.yaml") == cfg


def test_history_metrics_and_status_read_back(cfg):
    record = RunRecord.create(cfg)
    record.log("autoencoder", 0, train_loss=0.5, lr=1e-3)
    record.log("autoencoder", 1, train_loss=0.25, lr=5e-4)
    record.update_metrics({"nrmse": 0.1})
    record.update_metrics({"gap": 0.2})
    record.update_run(status="finished")
    run = read_run(record.path)
    assert run.config == cfg and run.status == "finished"
    assert [r["train_loss"] for r in run.history] == [0.5, 0.25]
    assert run.history[1] == {"stage": "autoencoder", "epoch": 1, "train_loss": 0.25, "lr": 5e-4}
    assert run.metrics == {"nrmse": 0.1, "gap": 0.2}


def test_refuses_non_empty_run_dir_and_bad_status(cfg, tmp_path):
    record = RunRecord.create(cfg, tmp_path / "r")
    with pytest.raises(FileExistsError, match="not empty"):
        RunRecord.create(cfg, tmp_path / "r")
    with pytest.raises(ValueError, match="status"):
        record.update_run(status="great")


def test_torn_last_history_line_is_dropped_with_warning(cfg):
    record = RunRecord.create(cfg)
    record.log("operator", 0, train_loss=1.0)
    with open(record.path / "history.jsonl", "a") as f:
        f.write('{"stage": "operator", "ep')  # a crash mid-write
    with pytest.warns(UserWarning, match="torn last line"):
        run = read_run(record.path)
    assert len(run.history) == 1


def test_corrupt_middle_history_line_is_an_error(cfg):
    record = RunRecord.create(cfg)
    (record.path / "history.jsonl").write_text('garbage\n{"stage": "a", "epoch": 0}\n')
    with pytest.raises(ValueError, match="history.jsonl:1"):
        read_run(record.path)


def test_unknown_path_is_clear(tmp_path):
    with pytest.raises(RunNotFoundError, match="not a run folder"):
        read_run(tmp_path / "missing")
