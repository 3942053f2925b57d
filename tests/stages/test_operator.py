"""The operator stage's symmetry augmentation: every window is an exact image of a stored one."""

import dataclasses
import json

import pytest
import torch

from tests.conftest import train_smoke
from ups.config import load_config
from ups.data.augment import burgers_symmetry
from ups.data.dataset import load_dataset
from ups.eval.evaluate import evaluate
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


def _ensemble_stage(smoke_run, members: int = 2) -> OperatorStage:
    cfg = load_config(smoke_run / "config.yaml", [f"operator.members={members}"])
    ctx = StageContext.from_dataset(
        cfg, load_dataset(cfg.data, cfg.paths.data_cache), RunRecord(smoke_run)
    )
    return OperatorStage(ctx)


def test_ensemble_members_start_apart_and_member0_as_the_single_operator(smoke_run):
    single, ensemble = _stage(smoke_run, False), _ensemble_stage(smoke_run, 3)
    members = ensemble.model.members
    first = dict(members[0].named_parameters())
    for name, param in single.model.named_parameters():
        assert torch.equal(param, first[name]), name
    assert not torch.equal(next(members[1].parameters()), next(members[2].parameters()))
    assert not torch.equal(next(members[0].parameters()), next(members[1].parameters()))


def test_ensemble_members_draw_their_own_windows_member0_those_of_a_single_operator(smoke_run):
    single, ensemble = _stage(smoke_run, False), _ensemble_stage(smoke_run, 3)
    z_one, u_one = _first_batch(single)
    z, u = _first_batch(ensemble)
    assert z.shape == (z_one.shape[0], 3, *z_one.shape[1:])
    assert u.shape == (u_one.shape[0], 3, *u_one.shape[1:])
    assert torch.equal(u[:, 0], u_one) and torch.equal(z[:, 0], z_one)
    assert not torch.equal(u[:, 1], u[:, 0]) and not torch.equal(u[:, 2], u[:, 1])
    # Seeded by the loader stream: the same seed repeats every member's windows.
    assert torch.equal(_first_batch(ensemble)[1], u)


def test_ensemble_loss_is_the_members_mean_and_trains_every_member(smoke_run):
    stage = _ensemble_stage(smoke_run, 2)
    with torch.no_grad():  # move the zero (adaLN-Zero) layers, which block gradients at init
        for i, p in enumerate(stage.model.parameters()):
            p.add_(0.05 * torch.randn(p.shape, generator=torch_generator(i, "test/perturb")))
    z, u = _first_batch(stage)
    noise = torch_generator(0, "test/noise")
    terms = stage.losses((z, u), noise)
    ensemble, cfg = stage.model, stage.cfg
    stage.cfg, each = dataclasses.replace(cfg, members=1), []
    for m, member in enumerate(ensemble.members):
        stage.model = member
        each.append(stage.losses((z[:, m], u[:, m]), noise))
    stage.model, stage.cfg = ensemble, cfg
    for term, value in terms.items():
        torch.testing.assert_close(value, (each[0][term] + each[1][term]) / 2)
    sum(terms.values()).backward()
    for name, param in ensemble.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def _val(run_dir, stage: str) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())[stage]["best_val"]


def test_conserve_mass_holds_operator_and_corrected_rollouts_to_their_mass(
    smoke_overrides, tmp_path
):
    # The golden autoencoder kind (patch, full basis); the same run without the constraint
    # drifts, so a gap of ~0 is the constraint's and not the data's. The corrector's val
    # rollouts (which select it) and the evaluation's corrected mode are held as well.
    patch = ["autoencoder.model.kind=patch", "autoencoder.model.latent_dim=4", "operator.members=2"]
    stages = "stages=[autoencoder,operator,diffusion]"
    gaps = {}
    for conserve in (False, True):
        run = tmp_path / f"conserve{conserve}"
        overrides = [*smoke_overrides, *patch, stages, f"operator.conserve_mass={conserve}"]
        train_smoke(run, overrides)
        evaluate(run, ["tracking.wandb.mode=disabled"], progress=False)
        diffusion = _val(run, "diffusion")
        test = json.loads((run / "metrics.json").read_text())["eval/test"]
        gaps[conserve] = (
            _val(run, "operator")["conservation_gap"],
            diffusion["conservation_gap"],
            test["operator/conservation_gap"],
            test["corrected/conservation_gap"],
        )
        assert diffusion["operator_conservation_gap"] == pytest.approx(gaps[conserve][0])
    assert min(gaps[False]) > 0.5  # percent of the initial rms
    assert max(gaps[True]) < 1e-3
