"""``compare`` on three smoke seeds: the spread of every metric, the training-loss variance and
the loss-metric correlations against values computed here by hand; undefined stays undefined."""

import json

import numpy as np
import pytest

from tests.analysis.conftest import SEEDS
from ups.analysis.compare import compare, correlation, flatten
from ups.analysis.report import comparison_markdown
from ups.analysis.sources import open_runs
from ups.analysis.view import AnalysisInputError, RunView

NAMES = [f"seed{s}" for s in SEEDS]


def _by_hand_pearson(x, y):
    x, y = np.asarray(x) - np.mean(x), np.asarray(y) - np.mean(y)
    return float((x * y).sum() / np.sqrt((x**2).sum() * (y**2).sum()))


def _ranks(v):
    return np.argsort(np.argsort(v)).astype(float)  # no ties in these values


@pytest.fixture(scope="module")
def seeds_data(smoke_seeds):
    runs = {n: smoke_seeds / n for n in NAMES}
    rows = {
        n: [json.loads(line) for line in (r / "history.jsonl").read_text().splitlines()]
        for n, r in runs.items()
    }
    evaluated = {
        n: json.loads((r / "metrics.json").read_text())["eval/test"] for n, r in runs.items()
    }
    return rows, evaluated, compare(open_runs([str(smoke_seeds / "seeds.json")]))


def test_metric_spread_by_hand_and_as_ups_seeds_recorded_it(smoke_seeds, seeds_data):
    _, evaluated, result = seeds_data
    recorded = json.loads((smoke_seeds / "seeds.json").read_text())["stats"]
    for metric, recorded_key in (
        ("ttc/nrmse", "nrmse"),
        ("corrected/conservation_gap", "corrected_conservation_gap"),
        ("ttc/improvement_pct", "ttc_improvement_pct"),
    ):
        values = np.array([evaluated[n][metric] for n in NAMES])
        col = result["metrics"][metric]
        mean = values.sum() / 3
        std = np.sqrt(((values - mean) ** 2).sum() / 2)  # ddof = 1
        assert col["values"] == dict(zip(NAMES, values.tolist(), strict=True))
        assert col["n"] == 3 and col["missing"] == [] and col["undefined"] == []
        assert col["mean"] == pytest.approx(mean) and col["std"] == pytest.approx(std)
        assert col["var"] == pytest.approx(std**2)
        assert col["cv_pct"] == pytest.approx(100 * std / abs(mean))
        assert (col["min"], col["max"]) == (values.min(), values.max())
        assert col["cv_pct"] == pytest.approx(recorded[recorded_key]["cv_pct"])
    # Every numeric eval metric is in the table, none invented.
    numeric = {k for k, v in evaluated["seed0"].items() if isinstance(v, (int, float))}
    assert set(result["metrics"]) == numeric


def test_training_loss_variance_per_stage(seeds_data):
    rows, _, result = seeds_data
    for stage in ("autoencoder", "operator", "diffusion", "consistency"):
        final = np.array(
            [[r for r in rows[n] if r["stage"] == stage][-1]["train_loss"] for n in NAMES]
        )
        col = result["training_loss"][stage]
        assert list(col["values"].values()) == final.tolist()
        assert col["var"] == pytest.approx(final.var(ddof=1))
        assert col["cv_pct"] == pytest.approx(100 * final.std(ddof=1) / final.mean())
        assert col["unfinished"] == []


def test_correlations_of_final_loss_with_eval_metrics_by_hand(seeds_data):
    rows, evaluated, result = seeds_data
    table = {(r["stage"], r["metric"]): r for r in result["correlations"]}
    for stage in ("operator", "diffusion"):
        x = [[r for r in rows[n] if r["stage"] == stage][-1]["train_loss"] for n in NAMES]
        for metric in ("corrected/nrmse", "ttc/conservation_gap"):
            y = [evaluated[n][metric] for n in NAMES]
            cell = table[(stage, metric)]
            assert cell["n"] == 3
            assert cell["pearson"] == pytest.approx(_by_hand_pearson(x, y))
            assert cell["spearman"] == pytest.approx(_by_hand_pearson(_ranks(x), _ranks(y)))


def test_config_diff_is_the_seed_only(seeds_data):
    assert seeds_data[2]["config_diff"] == {"seed": {"seed0": 0, "seed1": 1, "seed2": 2}}
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": 1, "a.c": [1, 2], "d": None}


def test_undefined_correlations_are_none_not_zero():
    assert correlation([1.0, 2.0], [3.0, 1.0]) == (None, None)  # fewer than 3 pairs
    assert correlation([1.0, 1.0, 1.0], [3.0, 1.0, 2.0]) == (None, None)  # constant side
    assert correlation([1.0, 2.0, 3.0], [2.0, 4.0, 7.0])[1] == pytest.approx(1.0)


def _synthetic(name, seed, loss, evaluated, finished=True):
    config = {"seed": seed, "stages": ["operator"], "operator": {"train": {"epochs": 2}}}
    rows = [{"stage": "operator", "epoch": 0, "train_loss": loss}]
    metrics = {"eval/test": evaluated, **({"operator": {}} if finished else {})}
    return RunView(name, f"test:{name}", config, rows, metrics, "finished")


def test_missing_values_are_listed_and_left_out_of_the_statistics():
    views = [
        _synthetic("a", 0, 1.0, {"ttc/nrmse": 0.1, "ttc/improvement_pct": 2.0}),
        _synthetic("b", 1, 2.0, {"ttc/nrmse": 0.3, "ttc/improvement_pct": None}),
        _synthetic("c", 2, 3.0, {"ttc/nrmse": 0.2}),
        _synthetic("d", 3, 9.0, {"ttc/nrmse": 0.9}, finished=False),
    ]
    result = compare(views)
    col = result["metrics"]["ttc/improvement_pct"]
    assert col["values"] == {"a": 2.0, "b": None} and col["missing"] == ["c", "d"]
    assert col["undefined"] == ["b"] and col["n"] == 1
    assert col["mean"] == 2.0 and col["std"] is None and col["cv_pct"] is None
    loss = result["training_loss"]["operator"]
    assert loss["values"] == {"a": 1.0, "b": 2.0, "c": 3.0} and loss["unfinished"] == ["d"]
    cell = next(r for r in result["correlations"] if r["metric"] == "ttc/nrmse")
    assert cell["n"] == 3 and cell["pearson"] == pytest.approx(0.5)  # d's unfinished loss left out
    improvement = next(r for r in result["correlations"] if r["metric"] == "ttc/improvement_pct")
    assert (improvement["n"], improvement["pearson"], improvement["spearman"]) == (1, None, None)
    text = comparison_markdown(result)
    assert "| ttc/improvement_pct | 2 | n/a | missing | missing |" in text
    assert "| operator | 1 | 2 | 3 | unfinished |" in text
    assert "n/a / n/a (n=1)" in text
    assert "| seed | 0 | 1 | 2 | 3 |" in text


def test_compare_needs_two_runs(seeds_data, smoke_seeds):
    with pytest.raises(AnalysisInputError, match="at least 2 runs, got 1"):
        compare(open_runs([str(smoke_seeds / "seed0")]))


def test_crashed_run_beside_the_seeds(smoke_seeds, crashed_run):
    result = compare(open_runs([str(smoke_seeds), str(crashed_run)]))
    assert [r["complete"] for r in result["runs"]] == [True, True, True, False]
    assert result["training_loss"]["operator"]["unfinished"] == ["run"]
    assert result["training_loss"]["operator"]["n"] == 3
    assert result["metrics"]["ttc/nrmse"]["missing"] == ["run"]
