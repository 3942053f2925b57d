"""The analysis key schema against what the trainer, evaluator and W&B mirror really wrote."""

import json

from ups.analysis import keys
from ups.eval.modes import MODES
from ups.schema import STAGES
from ups.wandb_offline import find_offline_runs, read_offline_run


def test_every_key_the_analysis_reads_is_in_a_trained_run(smoke_seeds):
    run = smoke_seeds / "seed0"
    rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    metrics = json.loads((run / "metrics.json").read_text())
    stages = [s for s in STAGES if s in {r[keys.STAGE] for r in rows}]
    assert stages == ["autoencoder", "operator", "diffusion", "consistency"]
    for row in rows:
        assert {keys.STAGE, keys.EPOCH, *keys.EPOCH_KEYS} <= row.keys(), row
        assert keys.VAL_LOSS in row and all(
            k.startswith(keys.VAL_PREFIX) for k in row if k.startswith("val")
        )
    for stage in stages:
        assert set(keys.STAGE_METRIC_KEYS) == metrics[stage].keys(), stage
    assert keys.eval_splits(metrics) == ["test"]
    evaluated = metrics[keys.eval_section("test")]
    modes = [k.split("/")[0] for k in evaluated if k.endswith("/nrmse")]
    assert {"operator", "corrected", "ttc"} <= set(modes)
    for mode in modes:
        assert {keys.mode_key(mode, m) for m in keys.EVAL_METRICS} <= evaluated.keys(), mode
    assert set(keys.TTC_KEYS) | set(keys.CORRELATED_METRICS) <= evaluated.keys()
    assert set(keys.DIFFUSION_STAGES) <= set(STAGES)
    assert tuple(MODES) == keys.EVAL_MODES
    assert keys.modes_in(evaluated) == [m for m in MODES if m in modes]


def test_the_wandb_key_mapping_is_what_the_mirror_wrote(smoke_seeds):
    files = find_offline_runs(smoke_seeds / "seed0")
    runs = [read_offline_run(f) for f in files]
    jobs = {r["job_type"] for r in runs}
    assert jobs == {keys.WANDB_TRAIN_JOB, keys.WANDB_EVAL_JOB_PREFIX + "test"}
    train = next(r for r in runs if r["job_type"] == keys.WANDB_TRAIN_JOB)
    logged = [row for row in train["history"] if keys.wandb_key("operator", keys.EPOCH) in row]
    assert len(logged) == 6  # the smoke operator's epochs
    for row in logged:
        wanted = {keys.wandb_key("operator", k) for k in (keys.EPOCH, *keys.EPOCH_KEYS)}
        assert wanted <= row.keys()
    assert set(keys.STAGE_METRIC_KEYS) == train["summary"]["operator"].keys()
    assert all(r["group"] == "seed0" and r["exit_code"] == 0 for r in runs)
