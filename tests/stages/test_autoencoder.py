"""The autoencoder stage builds the configured kind and trains it on the smoke data."""

import torch

from tests.conftest import train_smoke
from ups.config import load_config
from ups.data.dataset import load_dataset
from ups.models.patch_autoencoder import PatchAutoencoder
from ups.records import RunRecord
from ups.stages.autoencoder import load_autoencoder
from ups.stages.context import StageContext


def relative_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    return (torch.linalg.norm(approx - exact) / torch.linalg.norm(exact)).item()


def test_patch_kind_learns_the_principal_subspace_through_the_stage(smoke_overrides, tmp_path):
    # The golden config's kind and training (the smoke config itself uses the conv net), with
    # 2 of the 4 dimensions of each smoke patch, so the basis has to be learned: the best a
    # 2-dimensional linear code can do is the principal subspace of the training patches.
    run_dir = tmp_path / "patch"
    golden = [
        "autoencoder.model.kind=patch",
        "autoencoder.model.latent_dim=2",
        "autoencoder.train.lr=1e-2",
        "autoencoder.train.epochs=30",
    ]
    train_smoke(run_dir, [*smoke_overrides, "stages=[autoencoder]", *golden])
    cfg = load_config(run_dir / "config.yaml")
    ctx = StageContext.from_dataset(
        cfg, load_dataset(cfg.data, cfg.paths.data_cache), RunRecord(run_dir)
    )
    ae = load_autoencoder(ctx)
    assert isinstance(ae, PatchAutoencoder)

    patch = ae.patch
    train_patches = ctx.train.reshape(-1, patch)
    principal = torch.linalg.svd(train_patches, full_matrices=False).Vh[:2]  # (2, P)
    val = ctx.val.flatten(0, 1)  # (frames, X)
    val_patches = val.reshape(-1, patch)
    best = relative_error(val_patches @ principal.T @ principal, val_patches)
    with torch.no_grad():
        trained = relative_error(ae(val), val)
    assert trained < 1.05 * best, (trained, best)
