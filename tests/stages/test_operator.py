"""The operator stage's symmetry augmentation: every window is an exact image of a stored one."""

import dataclasses

import torch

from ups.config import load_config
from ups.data.augment import burgers_symmetry
from ups.data.dataset import load_dataset
from ups.records import RunRecord
from ups.repro import torch_generator
from ups.stages.context import StageContext
from ups.stages.operator import OperatorStage


def _stage(smoke_run, augment: bool) -> OperatorStage:
    cfg = load_config(smoke_run / "config.yaml")
    cfg = dataclasses.replace(cfg, operator=dataclasses.replace(cfg.operator, augment=augment))
    ctx = StageContext.from_dataset(
        cfg, load_dataset(cfg.data, cfg.paths.data_cache), RunRecord(smoke_run)
    )
    return OperatorStage(ctx)


def _first_batch(stage, seed=0):
    return next(iter(stage.batches(torch_generator(seed, "test/loader"))))


def _symmetry_between(plain: torch.Tensor, moved: torch.Tensor) -> tuple[int, bool] | None:
    """The (shift, reflect) mapping one physical window (S, X) onto another, if any."""
    points = plain.shape[-1]
    for reflect in (False, True):
        for shift in range(points):
            image = burgers_symmetry(plain[None], torch.tensor([shift]), torch.tensor([reflect]))
            if torch.allclose(image[0], moved, atol=1e-5):
                return shift, reflect
    return None


def test_augmented_windows_are_symmetry_images_encoded_afresh(smoke_run):
    plain, augmented = _stage(smoke_run, False), _stage(smoke_run, True)
    z_plain, u_plain = _first_batch(plain)
    z_aug, u_aug = _first_batch(augmented)
    assert u_aug.shape == u_plain.shape and z_aug.shape == z_plain.shape
    norm = augmented.ctx.normalizer
    found = [
        _symmetry_between(norm.inverse(p), norm.inverse(a))
        for p, a in zip(u_plain, u_aug, strict=True)
    ]
    assert None not in found  # the same windows, each moved by an exact symmetry
    assert len(set(found)) > 1 and {r for _, r in found} == {False, True}
    torch.testing.assert_close(z_aug, augmented.ctx.encode(augmented.autoencoder, u_aug))
    # Seeded by the loader stream: the same seed gives the same windows, another seed others.
    assert torch.equal(_first_batch(augmented)[1], u_aug)
    assert not torch.equal(_first_batch(augmented, seed=1)[1], u_aug)
