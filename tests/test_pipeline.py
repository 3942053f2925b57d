"""``ups train`` end to end on the smoke config: what a run folder holds, stage selection,
resuming, and refusing what does not fit."""

import json

import pytest
import torch

from tests.conftest import SMOKE_CONFIG, train_smoke
from ups.cli import main
from ups.config import load_config
from ups.records import read_run
from ups.stages.context import MissingUpstreamError
from ups.wandb_offline import find_offline_runs, read_offline_run

EPOCH_KEYS = {
    "train_loss",
    "val_loss",
    "val_score",
    "lr",
    "grad_norm_mean",
    "grad_norm_max",
    "epoch_seconds",
    "best_so_far",
}
ROLLOUT_KEYS = {"val_rollout_nrmse", "val_conservation_gap"}


def test_run_folder_holds_every_stage_history_and_metrics(smoke_run):
    run = read_run(smoke_run)
    assert run.status == "finished"
    cfg = run.config
    for stage in cfg.stages:
        assert (smoke_run / "checkpoints" / f"{stage}.pt").is_file()
        rows = [r for r in run.history if r["stage"] == stage]
        best = run.metrics[stage]
        assert [r["epoch"] for r in rows] == list(range(best["epochs_run"]))
        if not best["stopped_early"]:
            assert best["epochs_run"] == getattr(cfg, stage).train.epochs
        keys = EPOCH_KEYS | (ROLLOUT_KEYS if stage != "autoencoder" else {"val_recon_nrmse"})
        assert all(keys <= row.keys() for row in rows), stage
        assert best["best_val"]["score"] == min(r["val_score"] for r in rows)
        assert rows[best["best_epoch"]]["val_score"] == best["best_val"]["score"]
    checkpoint = torch.load(smoke_run / "checkpoints" / "operator.pt", weights_only=True)
    assert checkpoint["epoch"] == run.metrics["operator"]["best_epoch"]


def test_stage_option_trains_one_stage_on_an_existing_run(smoke_run, smoke_overrides, tmp_path):
    run_dir = tmp_path / "partial"
    train_smoke(run_dir, [*smoke_overrides, "stages=[autoencoder]"])
    assert not (run_dir / "checkpoints" / "operator.pt").exists()
    with pytest.raises(MissingUpstreamError, match="operator.pt is missing"):
        train_smoke(
            run_dir, [*smoke_overrides, "stages=[autoencoder]"], stage="diffusion", resume=True
        )
    train_smoke(run_dir, [*smoke_overrides, "stages=[autoencoder]"], stage="operator", resume=True)
    assert (run_dir / "checkpoints" / "operator.pt").is_file()
    # Nothing of the autoencoder was retrained: its history is unchanged.
    history = read_run(run_dir).history
    epochs = load_config(SMOKE_CONFIG).autoencoder.train.epochs
    assert [r["stage"] for r in history].count("autoencoder") == epochs


def test_cli_train_resume_and_refusals(smoke_overrides, tmp_path, capsys):
    run_dir = tmp_path / "cli"
    args = [str(SMOKE_CONFIG), *smoke_overrides, "tracking.wandb.mode=disabled"]
    assert (
        main(["train", *args, "stages=[autoencoder]", "--run-dir", str(run_dir), "--no-progress"])
        == 0
    )
    before = (run_dir / "checkpoints" / "autoencoder.pt").read_bytes()
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0  # finished: no-op
    assert (run_dir / "checkpoints" / "autoencoder.pt").read_bytes() == before
    assert main(["train", str(SMOKE_CONFIG), "--resume", str(run_dir)]) == 2
    assert "--resume RUN takes its config" in capsys.readouterr().err
    assert main(["train", *args, "seed=3", "--run-dir", str(run_dir)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["train", "--no-progress"]) == 2
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2


def test_reopening_a_run_under_another_config_is_refused(smoke_overrides, tmp_path):
    from ups.records import RunMismatchError, RunRecord

    run_dir = tmp_path / "mismatch"
    train_smoke(run_dir, [*smoke_overrides, "stages=[autoencoder]"])
    other = load_config(SMOKE_CONFIG, [*smoke_overrides, "stages=[autoencoder]", "seed=7"])
    with pytest.raises(RunMismatchError, match=r"seed: 0 -> 7"):
        RunRecord.open(other, run_dir)


def test_offline_wandb_mirror_of_a_training_run(smoke_overrides, tmp_path):
    run_dir = train_smoke(
        tmp_path / "wb", [*smoke_overrides, "stages=[autoencoder]", "tracking.wandb.mode=offline"]
    )
    offline = read_offline_run(find_offline_runs(run_dir)[0])
    assert offline["config"]["autoencoder"]["model"]["latent_tokens"] == 8
    logged = [row for row in offline["history"] if "autoencoder/train_loss" in row]
    assert len(logged) == load_config(SMOKE_CONFIG).autoencoder.train.epochs
    assert "autoencoder/val_recon_nrmse" in logged[-1]
    assert offline["summary"]["autoencoder"]["best_epoch"] >= 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["autoencoder"]["epochs_run"] == len(logged)


def _weights(run, stage: str) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / f"{stage}.pt", weights_only=True)["model"]


def _same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_stage_trains_the_same_whatever_the_sections_it_is_not_granted(
    smoke_run, smoke_overrides, tmp_path
):
    # The registry (ups.schema.STAGE_SPECS) promises that a stage's weights depend on its
    # granted sections alone. Watched on real runs: change sections a stage may not read and its
    # weights stay bitwise the shared smoke run's, while the stage owning the change moves.
    unread = [
        "consistency.train.lr=1.0e-3",
        "consistency.teacher_steps=6",
        "fno.model.width=8",
        "eval.batch_size=3",
        "eval.views=2",
        "ttc.candidates=2",
    ]
    diffusion = ["diffusion.train.lr=3.0e-3", "diffusion.model.width=16", "diffusion.gap_weight=0"]
    cases = {  # the changed stage -> (its overrides, the stages that must not move)
        "diffusion": ([*diffusion, *unread], ("autoencoder", "operator")),
        "consistency": (unread, ("autoencoder", "operator", "diffusion")),
    }
    for changed, (overrides, untouched) in cases.items():
        run = train_smoke(tmp_path / changed, [*smoke_overrides, *overrides])
        for stage in untouched:
            assert _same_weights(_weights(smoke_run, stage), _weights(run, stage)), stage
        assert not _same_weights(_weights(smoke_run, changed), _weights(run, changed)), changed
