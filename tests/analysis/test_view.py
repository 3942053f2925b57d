from ups.analysis.view import RunView, eval_metrics, incomplete_reasons

CONFIG = {"stages": ["autoencoder", "operator"], "operator": {"train": {"epochs": 7}}}
HISTORY = [
    {"stage": "autoencoder", "epoch": 0},
    {"stage": "operator", "epoch": 0},
    {"stage": "operator", "epoch": 1},
]


def test_a_finished_run_with_every_stage_is_complete():
    metrics = {"autoencoder": {}, "operator": {}}
    assert incomplete_reasons(CONFIG, HISTORY, metrics, "finished") == ()


def test_incomplete_reasons_name_status_unfinished_stage_and_missing_checkpoint():
    reasons = incomplete_reasons(CONFIG, HISTORY, {"autoencoder": {}}, "failed")
    assert reasons == (
        "status is 'failed'",
        "stage 'operator' did not finish (2 of 7 epochs logged)",
    )
    missing = incomplete_reasons(
        CONFIG, HISTORY, {"autoencoder": {}, "operator": {}}, "finished", ["operator"]
    )
    assert missing == ("stage 'operator' has no checkpoints/operator.pt",)


def test_run_view_lists_configured_stages_first_then_logged_ones():
    history = [*HISTORY, {"stage": "fno", "epoch": 0}]
    metrics = {"eval/test": {"operator/nrmse": 0.04}}
    view = RunView("r", "local:r", CONFIG, history, metrics, "finished")
    assert view.stages == ["autoencoder", "operator", "fno"]
    assert [r["epoch"] for r in view.rows("operator")] == [0, 1]
    assert view.complete and view.seed is None
    assert eval_metrics(view, "test") == {"operator/nrmse": 0.04}
    assert eval_metrics(view, "val") == {}
