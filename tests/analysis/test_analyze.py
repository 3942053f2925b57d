"""``analyze`` on real smoke runs and a crashed one: every number against the run files read
independently (history.jsonl, metrics.json, seeds.json), and the flags against their rules."""

import json

import numpy as np
import pytest

from tests.analysis.conftest import CRASH_AT_EPOCH
from ups.analysis.analyze import (
    CONSERVATION_GAP_MAX_PCT,
    REWARD_ERROR_SPEARMAN_MIN,
    TTC_IMPROVEMENT_MIN_PCT,
    analyze,
    stage_summary,
    val_worse_flag,
)
from ups.analysis.report import analysis_markdown
from ups.analysis.sources import open_one
from ups.analysis.view import RunView


def _files(run):
    rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    return rows, json.loads((run / "metrics.json").read_text())


def test_stage_numbers_match_the_run_files(smoke_seeds):
    run = smoke_seeds / "seed0"
    rows, metrics = _files(run)
    result = analyze(open_one(str(run)))
    for stage in ("autoencoder", "operator", "diffusion", "consistency"):
        mine = [r for r in rows if r["stage"] == stage]
        loss = np.array([r["train_loss"] for r in mine])
        s = result["stages"][stage]
        assert s["finished"] and s["epochs_logged"] == metrics[stage]["epochs_run"] == len(mine)
        assert s["loss"]["initial"] == loss[0] and s["loss"]["final"] == loss[-1]
        assert s["loss"]["min"] == loss.min() and s["loss"]["min_epoch"] == int(loss.argmin())
        assert s["loss"]["reduction_pct"] == pytest.approx(100 * (loss[0] - loss[-1]) / loss[0])
        # Selection: the history's first minimum of val_score is the recorded best epoch, and
        # every val metric there is the recorded best_val.
        best = metrics[stage]["best_epoch"]
        assert (
            s["best_epoch"] == best and s["best_val_score"] == metrics[stage]["best_val"]["score"]
        )
        for key, value in metrics[stage]["best_val"].items():
            assert s["val"][f"val_{key}"]["at_epoch"] == value, (stage, key)
        assert s["loss"]["at_epoch"] == loss[best]
        stopped = metrics[stage]["stopped_early"]
        assert s["stopped_early"] == stopped
        assert s["early_stop_epoch"] == (len(mine) - 1 if stopped else None)
        grads = np.array([r["grad_norm_mean"] for r in mine])
        assert s["grad_norm"]["mean"] == pytest.approx(grads.mean())
        assert s["grad_norm"]["max"] == max(r["grad_norm_max"] for r in mine)
        assert s["grad_norm"]["last_epoch_mean"] == grads[-1]
        assert s["train_seconds"] == pytest.approx(sum(r["epoch_seconds"] for r in mine))
        assert s["wall_seconds"] == metrics[stage]["wall_seconds"]
        nrmse = [r["val_rollout_nrmse"] for r in mine] if stage != "autoencoder" else None
        if nrmse:
            t = s["val"]["val_rollout_nrmse"]
            assert t["values"] == nrmse
            assert t["change_pct"] == pytest.approx(100 * (nrmse[-1] - nrmse[0]) / nrmse[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flags_follow_their_thresholds(smoke_seeds, seed):
    headline = json.loads((smoke_seeds / "seeds.json").read_text())["per_seed"][str(seed)]
    result = analyze(open_one(str(smoke_seeds / f"seed{seed}")))
    flags = {f["flag"]: f for f in result["flags"]}
    assert flags["incomplete"]["flagged"] is False
    improvement = headline["ttc_improvement_pct"]
    assert flags["ttc_improvement"]["value"] == improvement
    assert flags["ttc_improvement"]["flagged"] == (improvement < TTC_IMPROVEMENT_MIN_PCT)
    spearman = headline["ttc_score_error_spearman"]
    assert flags["reward_error_correlation"]["flagged"] == (spearman < REWARD_ERROR_SPEARMAN_MIN)
    gap = headline["conservation_gap"]  # the headline mode's (ttc: the smoke config has TTC on)
    assert flags["conservation_gap"]["value"] == gap
    assert flags["conservation_gap"]["flagged"] == (gap > CONSERVATION_GAP_MAX_PCT)
    assert result["eval"]["ttc"]["ttc/improvement_pct"] == improvement
    assert result["eval"]["missing"] == []


def _view(rows, stages=("diffusion",)):
    return RunView("synthetic", "test", {"stages": list(stages)}, rows, {}, "finished")


def _rows(loss, nrmse, gap):
    return [
        {
            "stage": "diffusion",
            "epoch": e,
            "train_loss": a,
            "val_rollout_nrmse": b,
            "val_conservation_gap": c,
            "val_loss": a,
            "val_score": b,
        }
        for e, (a, b, c) in enumerate(zip(loss, nrmse, gap, strict=True))
    ]


def test_lower_diffusion_loss_worse_physics_is_flagged():
    rows = _rows(loss=[1.0, 0.5, 0.25], nrmse=[0.2, 0.1, 0.3], gap=[4.0, 3.0, 2.0])
    flag = val_worse_flag("diffusion", stage_summary(_view(rows), "diffusion"))
    # nRMSE and the score end 50% above where they started; the gap fell; val_loss is ignored.
    assert flag["flagged"] is True
    assert flag["value"] == {
        "val_score": pytest.approx(50.0),
        "val_rollout_nrmse": pytest.approx(50.0),
    }
    better = _rows(loss=[1.0, 0.5, 0.25], nrmse=[0.3, 0.2, 0.1], gap=[4.0, 3.0, 2.0])
    assert (
        val_worse_flag("diffusion", stage_summary(_view(better), "diffusion"))["flagged"] is False
    )
    rising = _rows(loss=[0.25, 0.5, 1.0], nrmse=[0.2, 0.1, 0.3], gap=[4.0, 3.0, 2.0])
    assert (
        val_worse_flag("diffusion", stage_summary(_view(rising), "diffusion"))["flagged"] is False
    )
    single = _rows(loss=[1.0], nrmse=[0.2], gap=[4.0])
    assert val_worse_flag("diffusion", stage_summary(_view(single), "diffusion"))["flagged"] is None


def test_crashed_run_is_analysed_as_far_as_it_went(crashed_run):
    rows, metrics = _files(crashed_run)
    result = analyze(open_one(str(crashed_run)))
    assert result["run"]["complete"] is False and result["run"]["status"] == "failed"
    flags = {f["flag"]: f for f in result["flags"]}
    assert flags["incomplete"]["flagged"] is True
    assert flags["ttc_improvement"]["flagged"] is None  # never evaluated: not checked, not 0
    assert flags["ttc_improvement"]["note"] == "missing at the source"
    operator = result["stages"]["operator"]
    loss = [r["train_loss"] for r in rows if r["stage"] == "operator"]
    assert operator["finished"] is False and operator["epochs_logged"] == CRASH_AT_EPOCH
    assert operator["loss"]["values"] == loss and operator["stopped_early"] is None
    assert operator["wall_seconds"] is None
    assert result["stages"]["autoencoder"]["best_epoch"] == metrics["autoencoder"]["best_epoch"]
    assert result["stages"]["diffusion"]["epochs_logged"] == 0
    assert result["eval"] == {"split": None, "modes": {}, "ttc": {}, "missing": []}
    text = analysis_markdown(result)
    assert "(**INCOMPLETE**)" in text and "simulated crash" in text
    assert f"| operator | {CRASH_AT_EPOCH}/6 | no |" in text and "| unfinished |" in text
    assert "not evaluated" in text
