"""W&B as a source: offline folders of real runs read back equal to the local records, the
mapping of single rows, and the public-API path on fake objects (no network)."""

import sys
import types

import pytest

from tests.analysis.conftest import SEEDS
from ups.analysis import keys
from ups.analysis.analyze import analyze
from ups.analysis.report import analysis_markdown
from ups.analysis.sources import open_one, open_sources
from ups.analysis.view import AnalysisInputError
from ups.analysis.wandb_source import (
    from_api,
    load_api,
    local_rows,
    merge_history,
    view_from_wandb,
)
from ups.eval.ttc_stats import SEARCH_KEYS

_PER_STEP = SEARCH_KEYS  # the TTC search statistics, also logged per step


@pytest.mark.parametrize("seed", SEEDS)
def test_offline_wandb_reads_back_as_the_local_run(smoke_seeds, seed):
    local = open_one(str(smoke_seeds / f"seed{seed}"))
    remote = open_one(str(smoke_seeds / f"seed{seed}" / "wandb"))
    assert remote.name == local.name and remote.source.startswith("wandb-offline:")
    assert remote.history == local.history
    assert remote.config == local.config
    assert remote.info["config_hash"] == local.info["config_hash"]
    assert remote.status == "finished" and remote.complete
    for stage in local.stages:
        assert remote.metrics[stage] == local.metrics[stage]
    mirrored, truth = remote.metrics["eval/test"], local.metrics["eval/test"]
    assert all(mirrored[k] == truth[k] for k in mirrored)
    # Absent, never invented: None metrics are not mirrored; every other metric is, including
    # the TTC search means whose per-step series W&B holds under other keys.
    left_out = set(truth) - set(mirrored)
    assert all(truth[k] is None for k in left_out)
    assert {f"ttc/{k}" for k in _PER_STEP} <= set(mirrored)
    assert not any(k.startswith("ttc_per_step/") for k in mirrored)


def test_one_wandb_file_and_its_folder_are_sources(smoke_seeds):
    files = sorted((smoke_seeds / "seed0" / "wandb").rglob("run-*.wandb"))
    train = next(f for f in files if "eval" not in f.name)
    view = open_one(str(train))
    assert len(view.history) == len(open_one(str(smoke_seeds / "seed0")).history)
    assert "eval/test" not in view.metrics
    assert open_one(str(train.parent)).history == view.history


def test_crashed_run_from_wandb_is_failed_and_incomplete(crashed_run):
    view = open_one(str(crashed_run / "wandb"))
    assert view.status == "failed" and not view.complete
    assert view.history == open_one(str(crashed_run)).history
    assert "stage 'operator' did not finish" in view.incomplete[1]


def test_local_rows_split_one_wandb_row_by_stage():
    row = {
        "_step": 7,
        "_runtime": 1.5,
        "diffusion/train_loss": 0.5,
        "diffusion/epoch": 2,
        "diffusion/val_score": None,  # the API fills keys a row did not log with None
        "ttc/chosen_error": 0.1,  # no ttc/epoch: not a training row
    }
    assert local_rows(row) == [{"stage": "diffusion", "epoch": 2, "train_loss": 0.5}]
    assert local_rows({"ttc/chosen_error": 0.1}) == []


def test_a_resumed_run_keeps_the_later_epochs():
    first = [{"op/epoch": 0, "op/train_loss": 3.0}, {"op/epoch": 1, "op/train_loss": 2.0}]
    second = [{"op/epoch": 1, "op/train_loss": 1.5}, {"op/epoch": 2, "op/train_loss": 1.0}]
    rows = merge_history([first, second])
    assert [(r["epoch"], r["train_loss"]) for r in rows] == [(0, 3.0), (1, 1.5), (2, 1.0)]


class FakeApiRun:
    """The attributes of ``wandb.apis.public.Run`` that the mapping reads."""

    def __init__(self, id, job_type, state, config, rows, summary, group="grp"):
        self.id, self.job_type, self.state, self.group = id, job_type, state, group
        self.entity, self.project = "ent", "proj"
        self.config, self.summary_metrics, self._rows = config, summary, rows

    def scan_history(self):
        return iter(self._rows)


def _fake_group():
    config = {
        "_wandb": {"cli_version": "x"},
        "config_hash": "abc",
        "seed": 4,
        "stages": ["operator"],
        "operator": {"train": {"epochs": 3}},
        "ttc": {"enabled": True},
    }
    rows = [
        {"_step": i, "operator/epoch": i, "operator/train_loss": 4.0 - i, "operator/val_score": v}
        for i, v in enumerate((9.0, 8.0))
    ]
    train = FakeApiRun("grp", "train", "crashed", config, rows, {"_runtime": 3})
    evaluation = FakeApiRun(
        "grp-eval-test",
        "eval-test",
        "finished",
        config,
        [],
        {"ttc/nrmse": 0.2, "ttc/improvement_pct": 7.5, "ttc/conservation_gap": 1.0},
    )
    return train, evaluation


def test_api_runs_map_to_the_local_schema_and_missing_stays_missing():
    train, evaluation = _fake_group()
    view = view_from_wandb([from_api(train), from_api(evaluation)], "grp", "wandb:ent/proj/grp")
    assert view.status == "failed"  # W&B's "crashed"
    assert view.config == {
        "seed": 4,
        "stages": ["operator"],
        "operator": {"train": {"epochs": 3}},
        "ttc": {"enabled": True},
    }
    assert view.info["config_hash"] == "abc"
    assert view.history == [
        {"stage": "operator", "epoch": 0, "train_loss": 4.0, "val_score": 9.0},
        {"stage": "operator", "epoch": 1, "train_loss": 3.0, "val_score": 8.0},
    ]
    assert view.metrics == {
        "eval/test": {
            "split": "test",
            "ttc/nrmse": 0.2,
            "ttc/improvement_pct": 7.5,
            "ttc/conservation_gap": 1.0,
        }
    }
    assert view.incomplete == (
        "status is 'failed'",
        "stage 'operator' did not finish (2 of 3 epochs logged)",
    )
    result = analyze(view)
    spearman = next(f for f in result["flags"] if f["flag"] == "reward_error_correlation")
    assert spearman["flagged"] is None and spearman["value"] is None
    assert spearman["note"] == "missing at the source"
    assert keys.TTC_SPEARMAN in result["eval"]["missing"]
    text = analysis_markdown(result)
    assert (
        "| ttc/score_error_spearman | missing | < 0.3 | not checked (missing at the source) |"
        in (text)
    )
    assert "| ttc/nrmse_step1 |" not in text and "| ttc | 0.2 | missing |" in text


def test_load_api_uses_the_public_api_of_the_runs_group(monkeypatch):
    train, evaluation = _fake_group()
    asked = []

    class FakeApi:
        def run(self, path):
            asked.append(path)
            return train

        def runs(self, path, filters):
            asked.append((path, filters))
            return [train, evaluation]

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(Api=FakeApi))
    view = open_sources("wandb:ent/proj/grp")[0]
    assert asked == ["ent/proj/grp", ("ent/proj", {"group": "grp"})]
    assert view.source == "wandb:ent/proj/grp" and view.metrics["eval/test"]["ttc/nrmse"] == 0.2
    with pytest.raises(AnalysisInputError, match="wandb:ENTITY/PROJECT/RUN_ID"):
        load_api("proj/grp")


def test_a_group_without_training_run_says_so():
    _, evaluation = _fake_group()
    view = view_from_wandb([from_api(evaluation)], "grp", "x")
    assert view.history == [] and view.status == "unknown"
    assert any("no training run" in n for n in view.notes)
