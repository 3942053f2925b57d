"""The trained smoke correctors do what their stages claim, measured on the val split."""

from dataclasses import replace

import pytest
import torch

from tests.conftest import train_smoke
from tests.stages.test_gradients import _stage
from ups.eval.evaluate import evaluate
from ups.models.consistency import consistency_sample
from ups.models.diffusion import diffusion_loss, sample
from ups.records import read_run, run_status
from ups.repro import torch_generator
from ups.stages.consistency import load_student
from ups.stages.context import StageContext
from ups.stages.diffusion import build_denoiser, load_denoiser


def test_student_matches_the_teacher_better_than_the_operator_alone(smoke_run):
    # teacher_match = E|r_student - r_teacher|^2 / E|r_teacher|^2 on val pairs with shared noise;
    # the operator alone (r = 0) scores exactly 1.
    best = read_run(smoke_run).metrics["consistency"]["best_val"]
    assert best["teacher_match"] < 0.95


def test_student_improves_on_its_teacher_copy(smoke_run):
    rows = [r for r in read_run(smoke_run).history if r["stage"] == "consistency"]
    assert rows[-1]["val_teacher_match"] < 0.8 * rows[0]["val_teacher_match"]


def test_teacher_learned_the_conditional_residual(smoke_run):
    stage = _stage(smoke_run, "consistency")  # holds the trained teacher and the val pairs
    zhat, r = stage.val_pairs.zhat[:64], stage.val_pairs.r[:64]
    cond = stage.ctx.cond(len(r))
    untrained = build_denoiser(stage.ctx)
    untrained.set_sigma_data(float(stage.teacher.sigma_data))

    @torch.no_grad()
    def val_loss(model):
        g = stage.ctx.generator("test/val_loss")
        return float(
            torch.stack([diffusion_loss(model, r, zhat, cond, g) for _ in range(8)]).mean()
        )

    def spread(model):
        draws = [sample(model, zhat, cond, stage.ctx.generator(f"test/seed{k}")) for k in range(4)]
        return float(torch.stack(draws).std(dim=0).mean())

    # Noise makes the loss non-trivial: about 1 untrained, clearly lower once trained.
    assert 0.7 < val_loss(untrained) < 1.5
    assert val_loss(stage.teacher) < 0.85 * val_loss(untrained)
    # Candidates differ between seeds, and their spread shrinks as the model learns.
    assert 0 < spread(stage.teacher) < 0.9 * spread(untrained)


def test_teacher_is_selected_at_its_val_noise_scale(smoke_run, monkeypatch):
    # Selection must score the teacher at the temperature it will correct at: at scale 0 the
    # val rollouts do not depend on the sampling stream; at other scales they do, and differ.
    stage = _stage(smoke_run, "diffusion")

    def val_nrmse(scale: float, stream_seed: int) -> float:
        stage.cfg = replace(stage.cfg, val_noise_scale=scale)
        monkeypatch.setattr(stage.ctx, "generator", lambda name: torch_generator(stream_seed, name))
        return stage.validate(stage.model)["rollout_nrmse"]

    assert val_nrmse(0.0, 1) == val_nrmse(0.0, 2)
    assert val_nrmse(1.0, 1) != val_nrmse(1.0, 2)
    assert val_nrmse(0.25, 1) != val_nrmse(1.0, 1)


@pytest.fixture(scope="module")
def cold_run(smoke_cache, tmp_path_factory):
    """A smoke run whose teacher is selected at, and corrects at, temperature 0."""
    runs = tmp_path_factory.mktemp("cold_runs")
    overrides = [f"paths.data_cache={smoke_cache}", f"paths.runs={runs}"]
    return train_smoke(runs / "cold", [*overrides, "diffusion.val_noise_scale=0.0"])


def test_student_is_selected_and_matched_at_its_teachers_temperature(
    smoke_run, cold_run, monkeypatch
):
    # The student replaces the teacher in the 'corrected' mode, so its val rollouts and its
    # teacher_match must sample at the teacher's temperature: at 0 neither depends on the noise
    # stream; at the smoke run's 1 both do.
    def student_val(run, stream_seed: int) -> dict[str, float]:
        monkeypatch.setattr(
            StageContext, "generator", lambda self, name: torch_generator(stream_seed, name)
        )
        stage = _stage(run, "consistency")
        return stage.validate(stage.model)

    cold = [student_val(cold_run, s) for s in (1, 2)]
    warm = [student_val(smoke_run, s) for s in (1, 2)]
    for key in ("rollout_nrmse", "teacher_match"):
        assert cold[0][key] == cold[1][key], key
        assert warm[0][key] != warm[1][key], key


def test_a_previous_state_corrector_trains_distils_and_corrects_from_the_state(
    smoke_cache, tmp_path
):
    overrides = [f"paths.data_cache={smoke_cache}", "diffusion.model.previous_state=true"]
    run = train_smoke(tmp_path / "state", overrides)
    assert run_status(run) == "finished"
    stage = _stage(run, "consistency")  # the trained teacher and the val pairs
    zhat, z = stage.val_pairs.zhat[:64], stage.val_pairs.z[:64]
    cond, student = stage.ctx.cond(len(zhat)), load_student(stage.ctx)

    def teacher_draw(state):
        return sample(stage.teacher, zhat, cond, torch_generator(0, "test/noise"), z=state)

    def student_draw(state):
        return consistency_sample(student, zhat, cond, torch_generator(0, "test/noise"), z=state)

    # The same noise from another state (one that made no step): another correction.
    for name, draw in (("teacher", teacher_draw), ("student", student_draw)):
        assert not torch.allclose(draw(z), draw(zhat)), name
    metrics = evaluate(run, ["tracking.wandb.mode=disabled", *overrides[:1]], progress=False)
    for mode in ("corrected", "ttc", "oracle"):
        assert 0 < metrics[f"{mode}/nrmse"] < metrics["persistence/nrmse"], mode


def test_a_refiner_corrector_learns_the_residual_and_corrects_in_evaluation(smoke_cache, tmp_path):
    overrides = [
        f"paths.data_cache={smoke_cache}",
        "stages=[autoencoder,operator,diffusion]",
        "diffusion.model.schedule=refiner",
        "diffusion.model.sigma_max=1.0",
        "diffusion.model.sigma_min=1e-4",
        "diffusion.model.sample_steps=3",
    ]
    run = train_smoke(tmp_path / "refiner", overrides)
    assert run_status(run) == "finished"
    stage = _stage(run, "diffusion")
    zhat, r, z = stage.val_pairs.zhat, stage.val_pairs.r, stage.val_pairs.z
    cond = stage.ctx.cond(len(r))

    def error(model, temperature):
        draw = sample(
            model, zhat, cond, stage.ctx.generator("test/noise"), noise_scale=temperature, z=z
        )
        return float((draw - r).pow(2).mean() / r.pow(2).mean())

    # Refining from the operator's step (r = 0): a zero-F refiner stays there (error 1, the
    # operator alone); the trained one moves towards the true residual (0.94 when written: the
    # smoke residual is mostly unpredictable from zhat, as the EDM teacher's is).
    untrained = build_denoiser(stage.ctx)
    untrained.set_sigma_data(float(stage.val_pairs.r.std()))
    assert error(untrained, 0.0) == 1.0
    assert error(load_denoiser(stage.ctx), 0.0) < 0.97
    metrics = evaluate(run, ["tracking.wandb.mode=disabled", *overrides[:1]], progress=False)
    for mode in ("corrected", "ttc", "oracle"):
        assert 0 < metrics[f"{mode}/nrmse"] < metrics["persistence/nrmse"], mode
