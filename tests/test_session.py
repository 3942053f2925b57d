import json

import pytest

from ups.config import load_config
from ups.records import read_run
from ups.session import open_session

SMOKE = "configs/burgers_smoke.yaml"


def _cfg(tmp_path):
    return load_config(SMOKE, [f"paths.runs={tmp_path}", "tracking.wandb.mode=disabled"])


def test_a_block_that_ends_marks_the_run_finished_with_its_rows(tmp_path):
    with open_session(_cfg(tmp_path), tmp_path / "run") as session:
        session.log("operator", 0, train_loss=0.5, val_score=0.25)
        session.finish_metrics({"operator": {"best_epoch": 0}})
    run = read_run(tmp_path / "run")
    assert run.info["status"] == "finished" and run.info["world_size"] == 1
    assert run.history == [{"stage": "operator", "epoch": 0, "train_loss": 0.5, "val_score": 0.25}]
    assert run.metrics["operator"] == {"best_epoch": 0}


def test_an_error_marks_the_run_failed_naming_it(tmp_path):
    with pytest.raises(RuntimeError), open_session(_cfg(tmp_path), tmp_path / "run"):
        raise RuntimeError("boom")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "failed" and info["error"] == "RuntimeError: boom"


def test_resume_reopens_the_same_folder_and_needs_it(tmp_path):
    cfg = _cfg(tmp_path)
    with open_session(cfg, tmp_path / "run") as session:
        session.log("autoencoder", 0, train_loss=1.0)
    with open_session(cfg, tmp_path / "run", resume=True) as session:
        session.log("autoencoder", 1, train_loss=0.5)
    assert [r["epoch"] for r in read_run(tmp_path / "run").history] == [0, 1]
    with pytest.raises(ValueError, match="needs the run folder"), open_session(cfg, resume=True):
        pass
