"""The autoencoder stage builds the configured kind and trains it on the smoke data."""

from tests.conftest import train_smoke
from ups.config import load_config
from ups.data.dataset import load_dataset
from ups.models.patch_autoencoder import PatchAutoencoder
from ups.records import RunRecord, read_run
from ups.stages.autoencoder import load_autoencoder
from ups.stages.context import StageContext


def test_patch_kind_trains_and_reloads_through_the_stage(smoke_overrides, tmp_path):
    # The golden config's kind and training (the smoke config itself uses the conv net).
    run_dir = tmp_path / "patch"
    golden = [
        "autoencoder.model.kind=patch",
        "autoencoder.train.lr=1e-2",
        "autoencoder.train.epochs=30",
    ]
    overrides = [*smoke_overrides, "stages=[autoencoder]", *golden]
    train_smoke(run_dir, overrides)
    cfg = load_config(run_dir / "config.yaml")
    ctx = StageContext.from_dataset(
        cfg, load_dataset(cfg.data, cfg.paths.data_cache), RunRecord(run_dir)
    )
    assert isinstance(load_autoencoder(ctx), PatchAutoencoder)
    rows = [r for r in read_run(run_dir).history if r["stage"] == "autoencoder"]
    assert rows[-1]["val_recon_nrmse"] < 0.1 * rows[0]["val_recon_nrmse"]
