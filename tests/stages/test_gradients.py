"""Every loss term of every stage reaches every trainable weight; frozen parts stay frozen."""

from dataclasses import replace

import pytest
import torch

from ups.config import load_config
from ups.data.dataset import load_dataset
from ups.models.amplitude import AMPLITUDE_CEILING, amplitude_loss_weights, amplitude_split
from ups.records import RunRecord
from ups.repro import torch_generator
from ups.stages.autoencoder import AutoencoderStage
from ups.stages.consistency import ConsistencyStage
from ups.stages.context import StageContext
from ups.stages.diffusion import DiffusionStage
from ups.stages.fno import FnoStage
from ups.stages.operator import OperatorStage
from ups.train import checkpoint
from ups.train.optim import build_optimizer

STAGES = {
    "autoencoder": (AutoencoderStage, {"reconstruction"}),
    "operator": (
        OperatorStage,
        {"one_step_latent", "one_step_decoded", "rollout_latent", "rollout_decoded"},
    ),
    "diffusion": (DiffusionStage, {"denoising"}),
    "consistency": (ConsistencyStage, {"distillation"}),
    "fno": (FnoStage, {"one_step", "rollout"}),
}
TRAINED_IN = {"fno": "fno_run"}  # the run fixture that trained each stage; default smoke_run


def _stage(smoke_run, name):
    cfg = load_config(smoke_run / "config.yaml")
    dataset = load_dataset(cfg.data, cfg.paths.data_cache)
    ctx = StageContext.from_dataset(cfg, dataset, RunRecord(smoke_run))
    stage = STAGES[name][0](ctx)
    # Start from the trained weights: at initialisation the zero (adaLN-Zero) output layers
    # block gradients to the layers before them, which would hide a broken path.
    trained = checkpoint.load(ctx.record.checkpoint_path(name), cfg)["model"]
    stage.model.load_state_dict(trained)
    return stage


def _perturb(model):
    """Move the zero (adaLN-Zero) layers of a fresh model, which block gradients at init."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch_generator(0, "test/perturb")))


def _frozen_modules(stage):
    return [
        m for m in vars(stage).values() if isinstance(m, torch.nn.Module) and m is not stage.model
    ]


def _first_batch(stage):
    return next(iter(stage.batches(torch_generator(0, "test/loader"))))


@pytest.mark.parametrize("name", list(STAGES))
def test_every_loss_term_reaches_every_trainable_parameter(request, name):
    stage = _stage(request.getfixturevalue(TRAINED_IN.get(name, "smoke_run")), name)
    batch = _first_batch(stage)
    terms = stage.losses(batch, torch_generator(0, "test/noise"))
    assert set(terms) == STAGES[name][1]
    for term in terms:
        stage.model.zero_grad(set_to_none=True)
        stage.losses(batch, torch_generator(0, "test/noise"))[term].backward()
        for param_name, param in stage.model.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, f"{term} -> {param_name}"
        for frozen in _frozen_modules(stage):
            assert all(not p.requires_grad and p.grad is None for p in frozen.parameters())


@pytest.mark.parametrize("name", ["operator", "diffusion", "consistency"])
def test_a_training_step_leaves_upstream_models_untouched(smoke_run, name):
    stage = _stage(smoke_run, name)
    frozen = _frozen_modules(stage)
    assert frozen, "a downstream stage must hold frozen upstream models"
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in frozen]
    trained_before = {k: v.clone() for k, v in stage.model.state_dict().items()}
    optimizer = build_optimizer(stage.model, stage.train_cfg)
    loss = sum(stage.losses(_first_batch(stage), torch_generator(0, "test/noise")).values())
    loss.backward()
    optimizer.step()
    for module, saved in zip(frozen, before, strict=True):
        assert not module.training
        assert all(torch.equal(v, saved[k]) for k, v in module.state_dict().items())
    changed = [
        k for k, v in stage.model.state_dict().items() if not torch.equal(v, trained_before[k])
    ]
    assert changed, "the stage's own model must train"


@pytest.mark.parametrize("name", ["operator", "fno"])
def test_relative_loss_terms_reach_every_trainable_parameter(request, name):
    stage = _stage(request.getfixturevalue(TRAINED_IN.get(name, "smoke_run")), name)
    stage.cfg = replace(stage.cfg, loss_scale="relative")
    batch = _first_batch(stage)
    terms = stage.losses(batch, torch_generator(0, "test/noise"))
    assert set(terms) == STAGES[name][1]
    for term, loss in terms.items():
        stage.model.zero_grad(set_to_none=True)
        loss.backward(retain_graph=True)
        for param_name, param in stage.model.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, f"{term} -> {param_name}"


def test_operator_terms_follow_their_weights(smoke_run):
    stage = _stage(smoke_run, "operator")
    stage.cfg = replace(stage.cfg, decoded_weight=0.0, rollout_weight=0.0)
    terms = stage.losses(_first_batch(stage), torch_generator(0, "test/noise"))
    assert set(terms) == {"one_step_latent"}


def test_operator_without_unroll_gradient_still_trains_every_parameter(smoke_run):
    stage = _stage(smoke_run, "operator")
    stage.cfg = replace(stage.cfg, unroll_gradient=False)
    loss = stage.losses(_first_batch(stage), torch_generator(0, "test/noise"))["rollout_latent"]
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in stage.model.parameters())


def test_per_sample_diffusion_stage_learns_residuals_in_amplitude_units(smoke_run):
    cfg = load_config(smoke_run / "config.yaml", ["diffusion.model.amplitude=per_sample"])
    ctx = StageContext.from_dataset(
        cfg, load_dataset(cfg.data, cfg.paths.data_cache), RunRecord(smoke_run)
    )
    stage = DiffusionStage(ctx)
    scaled = stage.pairs.r / amplitude_split(stage.pairs.zhat)[1]
    assert float(stage.model.sigma_data) == pytest.approx(float(scaled.std()), rel=1e-6)
    assert float(stage.model.sigma_data) != pytest.approx(float(stage.pairs.r.std()), rel=0.01)
    _perturb(stage.model)
    stage.losses(_first_batch(stage), torch_generator(0, "test/noise"))["denoising"].backward()
    for name, param in stage.model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_amplitude_scaled_operator_loss_weighs_small_frames_up_and_trains_every_parameter(
    smoke_run,
):
    overrides = ["operator.model.amplitude=capped", "operator.loss_scale=amplitude"]
    cfg = load_config(smoke_run / "config.yaml", overrides)
    ctx = StageContext.from_dataset(
        cfg, load_dataset(cfg.data, cfg.paths.data_cache), RunRecord(smoke_run)
    )
    stage = OperatorStage(ctx)
    _perturb(stage.model)
    batch = _first_batch(stage)
    weights = amplitude_loss_weights(batch[0][:, 1:], AMPLITUDE_CEILING)
    assert (weights == 1).any() and (weights > 1).any()  # the smoke data has both kinds
    terms = stage.losses(batch, torch_generator(0, "test/noise"))
    absolute = replace(stage.cfg, loss_scale="absolute")
    stage.cfg, scaled_terms = absolute, terms
    for term, loss in stage.losses(batch, torch_generator(0, "test/noise")).items():
        assert scaled_terms[term].item() > loss.item(), term
    for term, loss in scaled_terms.items():
        stage.model.zero_grad(set_to_none=True)
        loss.backward(retain_graph=True)
        for name, param in stage.model.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, f"{term} -> {name}"
