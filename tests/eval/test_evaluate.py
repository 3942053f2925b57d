"""``ups eval`` end to end on a trained smoke run: every mode, the files it writes, TTC's
bounds on the same candidates, per-trajectory selection, and what it refuses."""

import json
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import REPO, SMOKE_CONFIG
from ups.cli import main
from ups.config import load_config
from ups.data.dataset import get_dataset
from ups.eval.evaluate import evaluate
from ups.eval.modes import MODES, projection
from ups.eval.ttc_stats import spearman_rows
from ups.metrics import SUITE_KEYS
from ups.train.checkpoint import CheckpointMismatchError
from ups.ttc.rewards import REWARDS

# The metric suite's keys (its own test pins them) plus the cost every mode reports.
SUITE = (*SUITE_KEYS, "seconds_per_trajectory")
MODELLED = ("persistence", "spectral_coarse", "operator", "corrected", "projection")
CANDIDATE_RULES = ("random", "ttc", "oracle")


@pytest.fixture(scope="module")
def evaluated(smoke_run, smoke_cache, tmp_path_factory):
    """A private copy of the smoke run, evaluated once on the test split."""
    run = tmp_path_factory.mktemp("eval") / "run"
    shutil.copytree(smoke_run, run)
    every_reward = ",".join(REWARDS)  # fine_step too, which is not judged by default
    overrides = [
        f"paths.data_cache={smoke_cache}",
        "tracking.wandb.mode=disabled",
        f"ttc.diagnostic_rewards=[{every_reward}]",
    ]
    return run, overrides, evaluate(run, overrides, progress=False)


def _without_timing(metrics):
    return {k: v for k, v in metrics.items() if "seconds" not in k}


def test_every_mode_is_reported_with_the_full_suite(evaluated):
    run, _, metrics = evaluated
    for mode in (*MODELLED, *CANDIDATE_RULES):
        for key in SUITE:
            value = metrics[f"{mode}/{key}"]
            assert np.isfinite(value), f"{mode}/{key}"
    assert "fno/nrmse" not in metrics  # the smoke run trained no FNO: absent, never faked
    assert metrics["persistence/conservation_gap"] == 0.0
    assert metrics["reference_solver/seconds_per_trajectory"] > 0
    written = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert _without_timing(written) == _without_timing(metrics) | {
        "config_hash": written["config_hash"]
    }
    merged = json.loads((run / "metrics.json").read_text())
    assert merged["eval/test"]["ttc/nrmse"] == metrics["ttc/nrmse"]
    assert "consistency" in merged  # training metrics kept
    out = run / "eval" / "test"
    report = (out / "report.md").read_text()
    assert all(f"| {mode} |" in report for mode in (*MODELLED, *CANDIDATE_RULES))
    assert (out / "nrmse_vs_step.png").stat().st_size > 0
    assert (out / "trajectory_0.png").stat().st_size > 0


def test_ttc_is_bounded_by_the_oracle_on_the_same_candidates(evaluated):
    run, _, metrics = evaluated
    log = np.load(run / "eval" / "test" / "ttc_log.npz")
    # The three rules start from the same K candidates (same noise stream, same state).
    first = {rule: log[f"{rule}/errors"][:, 0] for rule in CANDIDATE_RULES}
    np.testing.assert_array_equal(first["random"], first["ttc"])
    np.testing.assert_array_equal(first["random"], first["oracle"])
    chosen = {rule: log[f"{rule}/chosen"] for rule in CANDIDATE_RULES}
    rows = np.arange(len(chosen["oracle"]))
    # Step 1: the oracle's pick has the least true error of the shared candidates.
    picked = first["oracle"][rows, chosen["oracle"][:, 0]]
    np.testing.assert_array_equal(picked, first["oracle"].min(axis=1))
    assert metrics["oracle/nrmse_step1"] <= metrics["ttc/nrmse_step1"]
    assert metrics["oracle/nrmse_step1"] <= metrics["random/nrmse_step1"]
    assert metrics["oracle/score_error_spearman"] == pytest.approx(1.0)
    # Selection is per trajectory: not one choice for the whole batch.
    assert any(len(set(step)) > 1 for step in chosen["ttc"].T)


def test_the_search_benchmark_reproduces_the_evaluation_without_writing(evaluated, tmp_path):
    run, overrides, metrics = evaluated
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    out = tmp_path / "search.json"
    command = [sys.executable, str(REPO / "benchmarks" / "ttc_search.py"), str(run)]
    command += [*overrides, "--modes", *CANDIDATE_RULES, "corrected", "--json", str(out)]
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    rows = json.loads(out.read_text())["modes"]
    assert list(rows) == ["operator", "corrected", "random", "ttc", "oracle"]
    for mode, row in rows.items():
        assert row["nrmse"] == metrics[f"{mode}/nrmse"], mode
        assert row["conservation_gap"] == metrics[f"{mode}/conservation_gap"], mode
    for reference in ("operator", "corrected"):
        ratio = rows["ttc"][f"ratio_to_{reference}"]
        assert ratio == rows["ttc"]["nrmse"] / rows[reference]["nrmse"]
        low, high = rows["ttc"][f"ratio_to_{reference}_ci"]
        assert low < ratio < high
        assert f"ratio_to_{reference}" not in rows[reference]
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_every_reward_is_logged_and_judged_alone_whatever_its_weight(evaluated):
    run, overrides, metrics = evaluated
    weights = vars(load_config(run / "config.yaml", overrides).ttc.weights)
    assert weights["solver_step"] == weights["fine_step"] == 0  # judged all the same
    log = np.load(run / "eval" / "test" / "ttc_log.npz")
    terms = {name: log[f"ttc/terms/{name}"] for name in REWARDS}
    # The total TTC selected by is the weighted sum of the logged rewards (horizon 1).
    total = sum(weight * terms[name] for name, weight in weights.items())
    np.testing.assert_allclose(total, log["ttc/scores"], rtol=1e-12, atol=1e-15)
    for name in REWARDS:
        rho = metrics[f"ttc/reward_spearman_{name}"]
        assert -1 <= rho <= 1, name
    # At step 1 the previous state is the truth: the solver step ranks nearly as the truth
    # does, and the fine step (the data's own solver) exactly.
    first = {n: spearman_rows(terms[n][:, 0], -log["ttc/errors"][:, 0]) for n in REWARDS}
    assert np.nanmean(first["solver_step"]) > 0.9
    np.testing.assert_array_equal(first["fine_step"], 1.0)
    assert "## Each reward alone" in (run / "eval" / "test" / "report.md").read_text()
    assert "random/terms/energy" not in log  # a rule of one term logs none


def test_projection_guard_conserves_mass_exactly(evaluated):
    _, _, metrics = evaluated
    assert metrics["projection/conservation_gap"] < 1e-9
    assert metrics["corrected/conservation_gap"] > 1e-3  # the guard did real work
    # It guards the corrected frames rather than rolling the corrector out again; its cost
    # includes theirs.
    cost = "seconds_per_trajectory"
    assert metrics[f"projection/{cost}"] >= metrics[f"corrected/{cost}"]


def test_projection_shifts_each_corrected_frame_to_the_initial_mass():
    rng = np.random.default_rng(0)
    u = rng.normal(size=(3, 5, 16))  # (B, S+1, X)
    corrected = rng.normal(size=(3, 4, 16))
    env = SimpleNamespace(frames={"corrected": corrected})
    guarded = projection(env, u)
    np.testing.assert_allclose(guarded.mean(axis=-1), np.repeat(u[:, :1].mean(axis=-1), 4, 1))
    shift = corrected - guarded  # one constant per frame: the shape is untouched
    np.testing.assert_allclose(shift, np.broadcast_to(shift[..., :1], shift.shape), atol=1e-12)
    with pytest.raises(ValueError, match="run 'corrected' first"):
        projection(SimpleNamespace(frames={}), u)


def test_eval_is_deterministic(evaluated):
    run, overrides, metrics = evaluated
    again = evaluate(run, overrides, progress=False)
    assert _without_timing(again) == _without_timing(metrics)


def test_eval_settings_change_without_retraining_but_training_settings_are_refused(evaluated):
    run, overrides, _ = evaluated
    val = evaluate(run, [*overrides, "eval.split=val", "ttc.candidates=4"], progress=False)
    assert val["split"] == "val" and val["trajectories"] == 8
    assert (run / "eval" / "val" / "report.md").is_file()
    with pytest.raises(CheckpointMismatchError, match="operator.model.width"):
        evaluate(run, [*overrides, "operator.model.width=16"], progress=False)


def test_corrected_mode_samples_at_the_eval_temperature(evaluated):
    # eval.noise_scale drives the 'corrected' mode alone: at 0 its sampler starts from no noise,
    # so the rollout no longer depends on the seed's noise; other modes do not move.
    run, overrides, metrics = evaluated
    quiet = [*overrides, "ttc.enabled=false", "eval.noise_scale=0"]
    cold = evaluate(run, quiet, progress=False)
    reseeded = evaluate(run, [*quiet, "eval.batch_size=3"], progress=False)
    assert cold["corrected/nrmse"] != metrics["corrected/nrmse"]
    assert cold["operator/nrmse"] == metrics["operator/nrmse"]
    assert reseeded["corrected/nrmse"] == pytest.approx(cold["corrected/nrmse"], rel=1e-5)
    # With noise, the same re-batching draws other corrections: the check above is not vacuous.
    noisy = evaluate(run, [*overrides, "ttc.enabled=false", "eval.batch_size=3"], progress=False)
    assert noisy["corrected/nrmse"] != pytest.approx(metrics["corrected/nrmse"], rel=1e-5)


def test_ttc_disabled_leaves_out_the_candidate_modes(evaluated):
    run, overrides, _ = evaluated
    metrics = evaluate(run, [*overrides, "ttc.enabled=false", "eval.split=val"], progress=False)
    assert not any(key.startswith(CANDIDATE_RULES) for key in metrics)
    assert "corrected/nrmse" in metrics


def test_cli_eval_prints_the_report_and_refuses_a_non_run(evaluated, tmp_path, capsys):
    run, overrides, _ = evaluated
    assert main(["eval", str(run), *overrides, "eval.split=val", "--no-progress"]) == 0
    assert "| ttc |" in capsys.readouterr().out
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_modes_cover_design_list():
    assert set(MODES) >= {*MODELLED, "fno", *CANDIDATE_RULES}


def test_pdebench_protocol_scores_from_the_tenth_true_frame(smoke_run, smoke_cache, tmp_path):
    from ups.eval.modes import new_env
    from ups.eval.surrogate import Surrogate
    from ups.records import RunRecord
    from ups.stages.context import StageContext

    run = tmp_path / "run"
    shutil.copytree(smoke_run, run, ignore=shutil.ignore_patterns("eval", ".lock"))
    every_reward = ",".join(REWARDS)  # fine_step too, which is not judged by default
    overrides = [
        f"paths.data_cache={smoke_cache}",
        "tracking.wandb.mode=disabled",
        f"ttc.diagnostic_rewards=[{every_reward}]",
    ]
    overrides += ["eval.pdebench=true", "ttc.enabled=false", "eval.solver_reference=false"]
    metrics = evaluate(run, overrides, progress=False)

    cfg = load_config(run / "config.yaml", overrides)
    dataset = get_dataset(cfg.data, smoke_cache, progress=False)
    truth = dataset.split("test")  # (B, 11, X): 10 given frames leave one predicted
    ctx = StageContext.from_dataset(cfg, dataset, RunRecord(run))
    env = new_env(cfg, dataset.dt, dataset.eps, Surrogate.load(ctx, cfg.eval.corrector))
    step = MODES["operator"](env, truth[:, 9:])  # (B, 1, X)

    def frame_10_nrmse(pred):  # (B, X) against the truth's frame 10, mean over trajectories
        rms = np.sqrt(np.mean(truth[:, 10] ** 2, axis=-1))
        return np.mean(np.sqrt(np.mean((pred - truth[:, 10]) ** 2, axis=-1)) / rms)

    assert metrics["operator/pdebench_nrmse"] == pytest.approx(frame_10_nrmse(step[:, 0]) / 11)
    assert metrics["persistence/pdebench_nrmse"] == pytest.approx(frame_10_nrmse(truth[:, 9]) / 11)
    assert "ttc/pdebench_nrmse" not in metrics
    report = (run / "eval" / "test" / "report.md").read_text()
    assert "PDEBench protocol: 10 true frames given" in report
    assert f"| operator | {metrics['operator/pdebench_nrmse']:.4f} |" in report


def test_pdebench_protocol_needs_more_frames_than_it_gives(tmp_path):
    from ups.config import ConfigError

    with pytest.raises(ConfigError, match="eval.pdebench"):
        load_config(SMOKE_CONFIG, ["eval.pdebench=true", "data.frames=10"])


def test_the_operator_step_is_always_a_candidate(evaluated, smoke_cache):
    from ups.eval.modes import new_env, relative_error
    from ups.eval.surrogate import Surrogate
    from ups.records import RunRecord
    from ups.stages.context import StageContext

    run, overrides, metrics = evaluated
    cfg = load_config(run / "config.yaml", overrides)
    assert cfg.ttc.keep_operator_step
    dataset = get_dataset(cfg.data, smoke_cache, progress=False)
    truth = dataset.split("test")
    ctx = StageContext.from_dataset(cfg, dataset, RunRecord(run))
    env = new_env(cfg, dataset.dt, dataset.eps, Surrogate.load(ctx, cfg.eval.corrector))
    operator_step = MODES["operator"](env, truth[:, :2])[:, 0]  # (B, X): the first step
    with np.load(run / "eval" / "test" / "ttc_log.npz") as log:
        errors = log["oracle/errors"][:, 0]  # (B, K) candidates' true errors at step 1
    # float32 latents decoded in other batch shapes: equal to rounding
    np.testing.assert_allclose(errors[:, 0], relative_error(operator_step, truth[:, 1]), rtol=1e-5)
    assert np.all(errors[:, 1:] != errors[:, :1])  # the others are sampled around it
    gain = 100 * (metrics["operator/nrmse"] - metrics["oracle/nrmse"]) / metrics["operator/nrmse"]
    assert metrics["oracle/gain_over_operator_pct"] == pytest.approx(gain)


def test_symmetry_views_move_the_latent_modes_only(evaluated):
    run, overrides, metrics = evaluated
    quiet = [*overrides, "ttc.enabled=false"]
    plain = evaluate(run, quiet, progress=False)
    viewed = evaluate(run, [*quiet, "eval.views=8"], progress=False)
    for mode in ("operator", "corrected"):
        assert viewed[f"{mode}/nrmse"] != pytest.approx(plain[f"{mode}/nrmse"], rel=1e-4), mode
    assert viewed["persistence/nrmse"] == plain["persistence/nrmse"]
    assert viewed["spectral_coarse/nrmse"] == plain["spectral_coarse/nrmse"]
    report = (run / "eval" / "test" / "report.md").read_text()
    assert "averaged over 8 symmetry views" in report


def test_a_run_without_a_corrector_reports_every_mode_it_can(smoke_cache, tmp_path, capsys):
    from tests.conftest import train_smoke
    from ups.eval.surrogate import Surrogate
    from ups.records import RunRecord
    from ups.stages.context import MissingUpstreamError, StageContext

    every_reward = ",".join(REWARDS)  # fine_step too, which is not judged by default
    overrides = [
        f"paths.data_cache={smoke_cache}",
        "tracking.wandb.mode=disabled",
        f"ttc.diagnostic_rewards=[{every_reward}]",
    ]
    run = train_smoke(tmp_path / "run", [*overrides, "stages=[autoencoder,operator]"])
    metrics = evaluate(run, [*overrides, "ttc.enabled=false"], progress=False)
    assert np.isfinite(metrics["operator/nrmse"]) and metrics["operator/nrmse"] > 0
    assert metrics["persistence/nrmse"] > metrics["operator/nrmse"]
    assert not any(k.startswith(("corrected/", "projection/")) for k in metrics)
    with np.load(run / "eval" / "test" / "per_trajectory.npz") as per_trajectory:
        assert set(per_trajectory) == {
            f"{mode}/{metric}"
            for mode in ("persistence", "spectral_coarse", "operator")
            for metric in ("nrmse", "conservation_gap")
        }
        assert per_trajectory["operator/nrmse"].mean() == pytest.approx(metrics["operator/nrmse"])

    assert main(["eval", str(run), *overrides, "ttc.enabled=true"]) == 2
    assert "ttc.enabled=false" in capsys.readouterr().err
    cfg = load_config(run / "config.yaml", overrides)
    dataset = get_dataset(cfg.data, smoke_cache, progress=False)
    ctx = StageContext.from_dataset(cfg, dataset, RunRecord(run))
    with pytest.raises(MissingUpstreamError, match="--stage diffusion"):
        Surrogate.load(ctx, cfg.eval.corrector).corrector(ctx.generator("test"))
