"""Reading sources into RunViews: local folders, seeds summaries, globs, bad and incomplete
input."""

import json
import shutil

import pytest

from tests.analysis.conftest import CRASH_AT_EPOCH, SEEDS
from ups.analysis.sources import open_one, open_runs, open_sources
from ups.analysis.view import AnalysisInputError
from ups.records import RunNotFoundError


def test_local_run_reads_back_the_files(smoke_seeds):
    view = open_one(str(smoke_seeds / "seed1"))
    lines = (smoke_seeds / "seed1" / "history.jsonl").read_text().splitlines()
    assert view.history == [json.loads(line) for line in lines]
    assert view.metrics == json.loads((smoke_seeds / "seed1" / "metrics.json").read_text())
    assert view.config["seed"] == 1 and view.config["data"]["points"] == 32
    assert view.status == "finished" and view.complete and view.incomplete == ()
    assert view.stages == ["autoencoder", "operator", "diffusion", "consistency"]


def test_seeds_summary_folder_and_glob_name_the_same_runs_once(smoke_seeds):
    names = [f"seed{s}" for s in SEEDS]
    assert [v.name for v in open_sources(str(smoke_seeds / "seeds.json"))] == names
    assert [v.name for v in open_sources(str(smoke_seeds))] == names
    # The glob matches seed0..2 and seeds.json (which lists them again): each run once.
    assert [v.name for v in open_runs([str(smoke_seeds / "seed*")])] == names
    assert [v.name for v in open_runs([str(smoke_seeds), str(smoke_seeds / "seed0")])] == names


def test_same_folder_name_from_two_places_is_told_apart(smoke_seeds, tmp_path):
    shutil.copytree(
        smoke_seeds / "seed0", tmp_path / "seed0", ignore=shutil.ignore_patterns("*.pt")
    )
    views = open_runs([str(smoke_seeds / "seed0"), str(tmp_path / "seed0")])
    assert [v.name for v in views] == ["seed0", "seed0#2"]


def test_unknown_paths_fail_clearly(tmp_path):
    with pytest.raises(RunNotFoundError, match="is not a run folder.*no such file or folder"):
        open_sources(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunNotFoundError, match="empty is not a run folder"):
        open_sources(str(tmp_path / "empty"))
    with pytest.raises(RunNotFoundError, match="the pattern matches nothing"):
        open_sources(str(tmp_path / "run-*"))


def test_a_folder_of_several_runs_is_not_one_run(smoke_seeds):
    with pytest.raises(AnalysisInputError, match="holds 3 runs .seed0, seed1, seed2."):
        open_one(str(smoke_seeds))


def test_crashed_run_is_read_as_far_as_it_went(crashed_run):
    view = open_one(str(crashed_run))
    assert view.status == "failed" and not view.complete
    assert "simulated crash" in view.incomplete[0]
    epochs = view.config["operator"]["train"]["epochs"]
    assert view.incomplete[1:] == (
        f"stage 'operator' did not finish ({CRASH_AT_EPOCH} of {epochs} epochs logged)",
        f"stage 'diffusion' did not finish (0 of {view.config['diffusion']['train']['epochs']} "
        "epochs logged)",
        f"stage 'consistency' did not finish (0 of "
        f"{view.config['consistency']['train']['epochs']} epochs logged)",
    )
    assert [r["epoch"] for r in view.rows("operator")] == list(range(CRASH_AT_EPOCH))
    assert "autoencoder" in view.metrics and "operator" not in view.metrics


def test_a_missing_checkpoint_marks_a_finished_stage_incomplete(smoke_seeds, tmp_path):
    run = tmp_path / "seed2"
    shutil.copytree(smoke_seeds / "seed2", run, ignore=shutil.ignore_patterns("wandb"))
    (run / "checkpoints" / "diffusion.pt").unlink()
    view = open_one(str(run))
    assert view.status == "finished"
    assert view.incomplete == ("stage 'diffusion' has no checkpoints/diffusion.pt",)
