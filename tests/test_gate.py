"""The gate's rules on hand-made summaries, its golden file's validation, and real smoke runs
broken on purpose."""

import json
import math
import shutil
from dataclasses import replace

import numpy as np
import pytest
import scipy.stats

from tests.conftest import SMOKE_CONFIG
from ups import gate
from ups.cli import main
from ups.golden import DEFAULT_THRESHOLDS as THRESHOLDS
from ups.golden import DEFAULT_TOLERANCE, Golden, GoldenFileError, load_golden
from ups.seeds import run_seeds
from ups.summary import SeedResult, SeedsSummary, SummaryError, load_summary

ENV = {
    "python": "3.11",
    "torch": "2.13.0",
    "numpy": "2",
    "cpu": "x",
    "cpu_id": "GenuineX family 6 model 1 stepping 1",
    "cpu_isa": "AVX2",
    "device": "cpu",
    "gpu": None,
    "threads": 1,
}
OTHER_ENV = {**ENV, "cpu": "y"}  # another machine: exact reproduction is not asked
# Per-trajectory shape of every seed's errors (mean 1): each seed's values are its mean times it.
PATTERN = np.linspace(0.5, 1.5, 41)


def summary(
    nrmse, gap, env=ENV, config_hash="abc", wobble=0.0, operator_ratio=1.1, operator_gap=None
):
    """A summary whose seed s has headline ``nrmse[s]`` and ``gap[s]``; ``wobble`` adds
    alternating per-trajectory noise (mean zero) of that relative size. Its operator alone
    scores ``operator_ratio`` times the (corrected) headline, with gap ``operator_gap[s]``
    (default: the headline's)."""
    noise = wobble * np.where(np.arange(len(PATTERN)) % 2 == 0, 1.0, -1.0)
    operator_gap = gap if operator_gap is None else operator_gap
    results = {
        s: SeedResult(
            {
                "nrmse": float(np.mean(n * (PATTERN + noise))),
                "conservation_gap": g,
                "corrected_nrmse": n,
                "operator_nrmse": operator_ratio * n,
                "operator_conservation_gap": operator_gap[s],
            },
            {"nrmse": (n * (PATTERN + noise)).tolist(), "conservation_gap": (g * PATTERN).tolist()},
        )
        for s, (n, g) in enumerate(zip(nrmse, gap, strict=True))
    }
    return SeedsSummary.of_results(
        results,
        config="c.yaml",
        config_name="toy",
        config_hash=config_hash,
        environment=env,
        headline="corrected",
        commit="c0ffee",
        date="2026-12-01",
    )


@pytest.fixture
def golden(tmp_path):
    path = tmp_path / "toy.json"
    base = summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2])
    return path, gate.update_baseline(path, base, previous=None)


def _failed(verdict):
    return {(c.rule, c.metric) for c in verdict.failed}


def test_baseline_file_holds_thresholds_tolerance_and_one_entry_per_environment(golden):
    path, written = golden
    on_disk = json.loads(path.read_text())
    assert on_disk["format"] == 3 and on_disk["config_hash"] == "abc"
    assert on_disk["thresholds"] == {
        "nrmse": 0.085,
        "conservation_gap": 2.0,
        "nrmse_cv_pct": 5.0,
        "corrected_gain_pct": 0.0,
        "ttc_gain_pct": 0.0,
    }
    assert on_disk["tolerance"] == {
        "alpha": 0.01,
        "seed_cv_pct": {"nrmse": 5.10, "conservation_gap": 2.65},
        "floor": {"nrmse": 0.0, "conservation_gap": 1.0e-3},
    }
    (entry,) = on_disk["baselines"]
    assert entry["environment"] == ENV  # the seeds' own fingerprint, threads included
    assert entry["seeds"] == [0, 1, 2]
    assert entry["stats"]["nrmse"]["mean"] == pytest.approx(0.051)
    assert entry["provenance"] == {"commit": "c0ffee", "date": "2026-12-01", "devices": {}}
    assert len(entry["per_trajectory"]["2"]["nrmse"]) == len(PATTERN)
    assert load_golden(path) == written


def test_the_same_numbers_pass_every_rule(golden):
    _, base = golden
    verdict = gate.check(summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2]), base)
    assert verdict.passed
    rules = {c.rule for c in verdict.checks}
    assert rules == {"threshold", "refinement", "completeness", "reproducibility", "regression"}
    assert sum(c.rule == "reproducibility" for c in verdict.checks) == 15  # 3 seeds x 5 metrics


def test_regression_limit_is_a_one_sided_normal_bound_on_the_larger_standard_error(golden):
    _, base = golden
    new = summary([0.053, 0.054, 0.055], [1.0, 1.1, 1.2], OTHER_ENV)
    limit = next(c.limit for c in gate.check(new, base).checks if c.metric == "nrmse mean")
    # Independently: the recipe's measured spread of seed means (5.10% of the mean) over 3 + 3
    # seeds is the larger SE here, since every trajectory moved by the same factor.
    mean = np.mean([0.050, 0.051, 0.052])
    expected = mean + scipy.stats.norm.ppf(0.99) * 0.0510 * mean * math.sqrt(2 / 3)
    assert limit == pytest.approx(expected, rel=1e-9)


def test_off_environment_a_shift_within_chance_passes_and_a_larger_one_fails(golden):
    _, base = golden
    near = gate.check(summary([0.053, 0.054, 0.055], [1.0, 1.1, 1.2], OTHER_ENV), base)
    assert near.passed  # +6%: within what three seeds of a recipe with a 5.1% spread can show
    far = gate.check(summary([0.060, 0.061, 0.062], [1.0, 1.1, 1.2], OTHER_ENV), base)
    assert _failed(far) == {("regression", "nrmse mean")}


def test_a_gap_at_rounding_is_not_a_regression_but_one_above_the_floor_is(golden):
    # A mass-conserving baseline's gap is float32 rounding (~1e-5 %); another device may double
    # it, which chance alone would call a regression. Above the floor (1e-3 %) the rule holds.
    path, _ = golden
    rounding = tmp_golden_with_gaps(path, 1e-5)
    doubled = gate.check(
        summary([0.050, 0.051, 0.052], [2e-5, 2.1e-5, 2.2e-5], OTHER_ENV), rounding
    )
    assert doubled.passed
    (check,) = [c for c in doubled.checks if c.metric == "conservation_gap mean"]
    assert check.limit == pytest.approx(1e-3)
    drifting = gate.check(
        summary([0.050, 0.051, 0.052], [2e-3, 2.1e-3, 2.2e-3], OTHER_ENV), rounding
    )
    assert _failed(drifting) == {("regression", "conservation_gap mean")}


def tmp_golden_with_gaps(path, gap: float) -> Golden:
    """The golden file at ``path`` rewritten for seeds whose gap is ``gap`` (nRMSE as before)."""
    base = load_golden(path)
    gaps = summary([0.050, 0.051, 0.052], [gap] * 3)
    return gate.update_baseline(path.parent / "gaps" / path.name, gaps, base)


def test_per_trajectory_noise_widens_the_limit_when_it_is_the_larger(golden):
    _, base = golden
    quiet = gate.regression_limit(*_sides(summary([0.051] * 3, [1.0] * 3, wobble=0.0), base))
    noisy = gate.regression_limit(*_sides(summary([0.051] * 3, [1.0] * 3, wobble=0.4), base))
    assert noisy > quiet


def _sides(new, base):
    golden_entry = base.baselines[0]
    return (
        gate._series(new.per_seed, new.per_trajectory, "nrmse"),
        gate._series(golden_entry.per_seed, golden_entry.per_trajectory, "nrmse"),
        0.01,
        0.0464,
    )


def test_thresholds_fail_naming_seed_and_cv(golden):
    _, base = golden
    verdict = gate.check(summary([0.05, 0.09, 0.05], [1.0, 2.5, 1.2], OTHER_ENV), base)
    failed = _failed(verdict)
    assert ("threshold", "nrmse (seed 1)") in failed
    assert ("threshold", "conservation_gap (seed 1)") in failed
    assert ("threshold", "nrmse CV % across seeds") in failed


def test_the_operator_below_the_headline_is_held_to_the_thresholds_too(golden):
    _, base = golden
    s = summary([0.05, 0.06, 0.05], [1.0, 1.1, 1.2], OTHER_ENV, operator_gap=[1.0, 2.5, 1.0])
    s.per_seed["1"]["operator_nrmse"] = 0.09  # its corrected headline (0.06) passes
    failed = _failed(gate.check(s, base))
    assert ("threshold", "operator_nrmse (seed 1)") in failed
    assert ("threshold", "operator_conservation_gap (seed 1)") in failed
    assert ("threshold", "nrmse (seed 1)") not in failed
    assert ("threshold", "conservation_gap (seed 1)") not in failed


def test_a_seed_without_the_operator_gap_fails_its_threshold():
    s = summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2])
    del s.per_seed["0"]["operator_conservation_gap"]
    failed = {(c.rule, c.metric) for c in gate.threshold_checks(s, THRESHOLDS) if not c.passed}
    assert failed == {("threshold", "operator_conservation_gap (seed 0)")}


def _ttc_summary(ttc_nrmse, corrected_nrmse):
    """Three seeds whose headline is TTC at ``ttc_nrmse`` over a corrected mode at
    ``corrected_nrmse``, both the same on every seed."""
    s = replace(summary([ttc_nrmse] * 3, [1.0, 1.1, 1.2], operator_ratio=1.0), headline="ttc")
    for values in s.per_seed.values():
        values.update(
            nrmse=ttc_nrmse,
            corrected_nrmse=corrected_nrmse,
            operator_nrmse=1.2 * corrected_nrmse,
            corrected_conservation_gap=1.0,
            ttc_improvement_pct=100 * (1 - ttc_nrmse / corrected_nrmse),
        )
    return s


@pytest.mark.parametrize(
    ("ttc_nrmse", "gain_pct", "passes"),
    [(0.045, 5.0, True), (0.048, 5.0, False), (0.048, 0.0, True), (0.051, 0.0, False)],
)
def test_a_ttc_headline_must_pay_its_declared_margin_over_the_corrected_mode(
    ttc_nrmse, gain_pct, passes
):
    s = _ttc_summary(ttc_nrmse, corrected_nrmse=0.050)
    checks = gate.threshold_checks(s, {**THRESHOLDS, "ttc_gain_pct": gain_pct})
    (check,) = [c for c in checks if c.metric == "ttc / corrected nrmse (seeds' mean)"]
    assert check.value == pytest.approx(ttc_nrmse / 0.050)
    assert check.limit == pytest.approx(1 - gain_pct / 100)
    assert check.passed is passes


def test_a_ttc_headline_holds_the_corrected_mode_to_the_thresholds():
    s = _ttc_summary(0.045, corrected_nrmse=0.050)
    s.per_seed["2"]["corrected_conservation_gap"] = 3.0
    failed = {(c.rule, c.metric) for c in gate.threshold_checks(s, THRESHOLDS) if not c.passed}
    assert failed == {("threshold", "corrected_conservation_gap (seed 2)")}


def test_without_ttc_there_is_no_ttc_rule_and_the_corrected_headline_is_checked_once():
    s = summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2])
    metrics = [c.metric for c in gate.threshold_checks(s, THRESHOLDS)]
    assert not any(m.startswith("ttc") or m.startswith("corrected_") for m in metrics)
    assert metrics.count("nrmse (seed 0)") == 1


@pytest.mark.parametrize(
    ("operator_ratio", "gain_pct", "passes"),
    [(1.1, 0.0, True), (1.1, 9.0, True), (1.1, 9.5, False), (0.99, 0.0, False), (0.99, -2.0, True)],
)
def test_refinement_rule_demands_the_declared_gain_over_the_operator(
    operator_ratio, gain_pct, passes
):
    """An operator 1.1x the corrected nRMSE means the corrector gains 9.1%: it meets a 9%
    margin, not 9.5%; a negative margin allows that much harm."""
    s = summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2], operator_ratio=operator_ratio)
    (check,) = [
        c
        for c in gate.threshold_checks(s, {**THRESHOLDS, "corrected_gain_pct": gain_pct})
        if c.rule == "refinement"
    ]
    assert check.value == pytest.approx(1 / operator_ratio)
    assert check.limit == pytest.approx(1 - gain_pct / 100)
    assert check.passed is passes


def test_refinement_rule_fails_a_seed_without_its_operator_number():
    s = summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2])
    del s.per_seed["2"]["operator_nrmse"]
    (check,) = [c for c in gate.threshold_checks(s, THRESHOLDS) if c.rule == "refinement"]
    assert not check.passed and check.value == math.inf


def test_a_corrector_that_stops_paying_fails_the_gate_and_cannot_become_a_baseline(
    golden, tmp_path
):
    path, base = golden
    worse = summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2], OTHER_ENV, operator_ratio=0.95)
    assert ("refinement", "corrected / operator nrmse (seeds' mean)") in _failed(
        gate.check(worse, base)
    )
    with pytest.raises(gate.BaselineRejectedError, match="corrected / operator"):
        gate.update_baseline(tmp_path / "new.json", worse, previous=base)


def test_same_environment_demands_exact_reproduction(golden):
    _, base = golden
    s = summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2])
    s.per_seed["1"]["nrmse"] += 1e-7
    assert ("reproducibility", "nrmse (seed 1) vs baseline") in _failed(gate.check(s, base))


def test_another_environment_skips_reproduction_saying_why_and_names_the_entry_used(golden):
    _, base = golden
    verdict = gate.check(summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2], OTHER_ENV), base)
    assert verdict.passed and not any(c.rule == "reproducibility" for c in verdict.checks)
    assert verdict.skipped == {"reproducibility": "environment differs: cpu y vs x"}
    table = verdict.markdown()
    assert "- reproducibility: skipped, environment differs: cpu y vs x" in table
    cpu = "(GenuineX family 6 model 1 stepping 1, AVX2)"
    assert f"no baseline for this environment (cpu y {cpu}, 1 thread(s), torch 2.13.0)" in table
    assert f"nearest entry (cpu x {cpu}, 1 thread(s), torch 2.13.0)" in table


@pytest.mark.parametrize(
    ("key", "value"),
    [("cpu_id", "GenuineX family 6 model 2 stepping 0"), ("cpu_isa", "AVX512")],
)
def test_one_model_name_on_another_generation_or_isa_is_another_environment(golden, key, value):
    # A virtual machine shows one model name (e.g. "AMD EPYC") for processors whose float
    # results differ: those are judged statistically, never asked to reproduce bit for bit.
    _, base = golden
    other = {**ENV, key: value}
    verdict = gate.check(summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2], other), base)
    assert verdict.passed and not any(c.rule == "reproducibility" for c in verdict.checks)
    assert verdict.skipped == {
        "reproducibility": f"environment differs: {key} {value} vs {ENV[key]}"
    }


def test_update_adds_an_entry_per_environment_and_replaces_only_its_own(golden):
    path, base = golden
    other = gate.update_baseline(path, summary([0.06, 0.061, 0.062], [1.0] * 3, OTHER_ENV), base)
    assert [b.environment["cpu"] for b in other.baselines] == ["x", "y"]
    again = gate.update_baseline(path, summary([0.07, 0.071, 0.072], [1.0] * 3, OTHER_ENV), other)
    assert [b.environment["cpu"] for b in again.baselines] == ["x", "y"]
    assert again.baselines[0] == base.baselines[0]
    assert again.baselines[1].per_seed["0"]["nrmse"] == pytest.approx(0.07)
    # Each environment is judged against its own entry: y's numbers reproduce y's exactly.
    verdict = gate.check(summary([0.07, 0.071, 0.072], [1.0] * 3, OTHER_ENV), load_golden(path))
    assert verdict.passed and any(c.rule == "reproducibility" for c in verdict.checks)
    assert gate.check(summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2]), again).passed


def test_nearest_entry_is_the_one_sharing_most_of_the_fingerprint(golden):
    path, base = golden
    far = {**ENV, "cpu": "z", "torch": "9", "numpy": "9"}
    both = gate.update_baseline(path, summary([0.07, 0.071, 0.072], [1.0] * 3, far), base)
    entry, exact = both.entry_for({**ENV, "cpu": "w"})
    assert not exact and entry.environment["cpu"] == "x"


def test_another_config_is_reported_not_compared(golden):
    _, base = golden
    verdict = gate.check(summary([0.05] * 3, [1.0] * 3, config_hash="zzz"), base)
    assert ("identity", "config_hash differs from the golden's") in _failed(verdict)
    assert not any(c.rule == "regression" for c in verdict.checks)
    assert verdict.skipped["regression"] == "the config differs from the golden's"


def test_fewer_seeds_than_the_baseline_fail_naming_the_missing_ones(golden):
    _, base = golden
    two = summary([0.050, 0.051], [1.0, 1.1])
    (check,) = [c for c in gate.check(two, base).checks if c.rule == "completeness"]
    assert not check.passed and check.metric == "missing: seed 2"


def test_a_metric_missing_from_a_seed_fails_completeness(golden):
    _, base = golden
    s = summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2])
    del s.per_seed["1"]["conservation_gap"]
    failed = _failed(gate.check(s, base))
    assert ("completeness", "missing: conservation_gap (seed 1)") in failed


def test_markdown_table_names_rule_value_limit_and_verdict(golden):
    _, base = golden
    s = summary([0.05, 0.09, 0.05], [1.0, 1.1, 1.2])
    table = gate.check(s, base).markdown()
    assert "FAILED" in table and "| threshold | nrmse (seed 1) | 0.09 | 0.085 |" in table
    assert "| nrmse | 0.05 | 0.09 | 0.05 |" in table


def test_update_refuses_seeds_that_fail_a_threshold(tmp_path, capsys):
    # CV 9.1% across the seeds: over the 5% limit, so no baseline may be made of them.
    spread_out = summary([0.050, 0.055, 0.060], [1.0, 1.1, 1.2])
    with pytest.raises(gate.BaselineRejectedError, match=r"nrmse CV % across seeds = 9\.09"):
        gate.update_baseline(tmp_path / "toy.json", spread_out, previous=None)
    assert not (tmp_path / "toy.json").exists()

    summary_file = tmp_path / "seeds.json"
    spread_out.write(summary_file)
    args = ["gate", str(SMOKE_CONFIG), "--summary", str(summary_file), "--update"]
    assert main([*args, "--golden-dir", str(tmp_path)]) == 2
    assert "not written: the seeds fail nrmse CV" in capsys.readouterr().err
    assert not (tmp_path / "burgers_smoke.json").exists()


def _format_2(data):
    """The file as format 2 wrote it: the CPU named by its model name alone, a -20 margin."""
    data["format"], data["thresholds"]["corrected_gain_pct"] = 2, -20.0
    for entry in data["baselines"]:
        del entry["environment"]["cpu_id"], entry["environment"]["cpu_isa"]
    return data


def test_a_format_2_file_is_refused_and_update_keeps_its_rules_and_reruns_its_baselines(
    golden, tmp_path, capsys
):
    target = _tampered(golden, tmp_path, _format_2)
    summary_file = tmp_path / "seeds.json"
    summary([0.060, 0.061, 0.062], [1.0, 1.1, 1.2]).write(summary_file)
    args = ["gate", str(SMOKE_CONFIG), "--summary", str(summary_file)]
    assert main([*args, "--golden-dir", str(target.parent)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and "model name alone" in err and "--update" in err

    assert main([*args, "--golden-dir", str(target.parent), "--update"]) == 0
    upgraded = load_golden(target)
    assert json.loads(target.read_text())["format"] == 3
    assert upgraded.thresholds["corrected_gain_pct"] == -20.0  # the reviewed rules stay
    (entry,) = upgraded.baselines  # the old entry is gone: only the rerun seeds' own
    assert entry.environment == ENV and entry.per_seed["0"]["nrmse"] == pytest.approx(0.060)


def test_missing_golden_fails_with_the_update_command(tmp_path, capsys):
    assert main(["gate", str(SMOKE_CONFIG), "--golden-dir", str(tmp_path)]) == 2
    assert "ups gate CONFIG --update" in capsys.readouterr().err


# --- a tampered golden file: exit 2, naming the file and the key ----------------------------


def _tampered(golden, tmp_path, edit):
    path, _ = golden
    data = json.loads(path.read_text())
    data = edit(data)
    target = tmp_path / "golden" / "burgers_smoke.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(data if isinstance(data, str) else json.dumps(data))
    return target


_DROP = object()


def _edit(keys, value=_DROP):
    """An edit of the parsed file: the value at path ``keys`` set to ``value``, or removed."""

    def edit(data):
        node = data
        for key in keys[:-1]:
            node = node[key]
        if value is _DROP:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
        return data

    return edit


TAMPERED = {
    "a seed's baseline": (
        _edit(["baselines", 0, "per_seed", "0"]),
        r"baselines\[0\]\.per_seed: missing key\(s\) \['0'\]",
    ),
    "one seed's nrmse": (
        _edit(["baselines", 0, "per_seed", "1", "nrmse"]),
        r"per_seed\.1: missing key\(s\) \['nrmse'\]",
    ),
    "the environment": (
        _edit(["baselines", 0, "environment"]),
        r"baselines\[0\]: missing key\(s\) \['environment'\]",
    ),
    "a fingerprint field": (
        _edit(["baselines", 0, "environment", "cpu"]),
        r"environment: missing key\(s\) \['cpu'\]",
    ),
    "a trajectory series": (
        _edit(["baselines", 0, "per_trajectory", "2", "nrmse"]),
        r"per_trajectory\.2: missing key",
    ),
    "invalid JSON": (lambda d: "{not json", r"is not readable JSON"),
    "a list": (lambda d: [d], r"must be a JSON object, got list"),
    "a top-level key": (_edit(["thresholds"]), r"missing key\(s\) \['thresholds'\]"),
    "the TTC margin": (
        _edit(["thresholds", "ttc_gain_pct"]),
        r"thresholds: missing key\(s\) \['ttc_gain_pct'\]",
    ),
    "a threshold 'abc'": (
        _edit(["thresholds", "nrmse"], "abc"),
        r"thresholds\.nrmse: must be a finite number, got 'abc'",
    ),
    "a threshold null": (
        _edit(["thresholds", "conservation_gap"], None),
        r"thresholds\.conservation_gap: must be a finite number, got None",
    ),
    "a hand-edited number": (
        _edit(["baselines", 0, "per_seed", "0", "nrmse"], 0.01),
        r"baselines\[0\]\.stats: disagrees with per_seed",
    ),
    "the old format": (_edit(["format"]), r"missing key\(s\) \['format'\]"),
    "no baselines": (_edit(["baselines"], []), r"baselines: must be a non-empty list"),
    "no measured spread": (_edit(["tolerance", "seed_cv_pct"]), r"tolerance: missing key"),
    "no floor": (_edit(["tolerance", "floor"]), r"tolerance: missing key\(s\) \['floor'\]"),
    "a gap floor missing": (
        _edit(["tolerance", "floor", "conservation_gap"]),
        r"tolerance\.floor: missing key\(s\) \['conservation_gap'\]",
    ),
    "a negative floor": (
        _edit(["tolerance", "floor", "nrmse"], -1.0),
        r"tolerance\.floor: must be >= 0",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_tampered_golden_file_is_exit_2_naming_file_and_key(golden, tmp_path, capsys, case):
    edit, message = TAMPERED[case]
    target = _tampered(golden, tmp_path, edit)
    with pytest.raises(GoldenFileError, match=message):
        load_golden(target)
    summary_file = tmp_path / "seeds.json"
    summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2]).write(summary_file)
    args = ["gate", str(SMOKE_CONFIG), "--summary", str(summary_file)]
    assert main([*args, "--golden-dir", str(target.parent)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and "Traceback" not in err


@pytest.mark.parametrize("content", ["{", "[]", '{"config": "c"}'])
def test_a_broken_summary_is_exit_2_naming_the_file(golden, tmp_path, capsys, content):
    path, _ = golden
    shutil.copy(path, tmp_path / "burgers_smoke.json")
    (tmp_path / "seeds.json").write_text(content)
    args = ["gate", str(SMOKE_CONFIG), "--summary", str(tmp_path / "seeds.json")]
    assert main([*args, "--golden-dir", str(tmp_path)]) == 2
    assert str(tmp_path / "seeds.json") in capsys.readouterr().err


@pytest.mark.parametrize(
    ("headline", "message"),
    [(None, r"missing key\(s\) \['headline'\]"), ("projection", "headline must be one of")],
)
def test_a_summary_without_a_known_headline_mode_is_refused(tmp_path, headline, message):
    data = summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2]).to_dict()
    if headline is None:
        del data["headline"]
    else:
        data["headline"] = headline
    (tmp_path / "seeds.json").write_text(json.dumps(data))
    with pytest.raises(SummaryError, match=message):
        load_summary(tmp_path)


def test_the_gate_takes_the_headline_mode_from_the_summary_not_from_its_keys():
    # TTC's own numbers in a corrected-headline summary do not make it a TTC headline, and a
    # TTC headline without them is still one.
    s = summary([0.050, 0.051, 0.052], [1.0, 1.1, 1.2])
    for values in s.per_seed.values():
        values["ttc_improvement_pct"] = 3.0
    assert not any(c.metric.startswith("ttc") for c in gate.threshold_checks(s, THRESHOLDS))
    ttc = _ttc_summary(0.045, corrected_nrmse=0.050)
    for values in ttc.per_seed.values():
        del values["ttc_improvement_pct"]
    metrics = {c.metric for c in gate.threshold_checks(ttc, THRESHOLDS)}
    assert "ttc / corrected nrmse (seeds' mean)" in metrics


def test_the_importable_gate_returns_the_verdict_the_cli_prints(golden, tmp_path, capsys):
    path, _ = golden
    golden_dir = tmp_path / "g"
    golden_dir.mkdir()
    shutil.copy(path, golden_dir / "burgers_smoke.json")
    summary_file = tmp_path / "seeds.json"
    summary([0.05, 0.09, 0.05], [1.0, 1.1, 1.2]).write(summary_file)
    verdict = gate.run(SMOKE_CONFIG, summary=summary_file, golden_dir=golden_dir)
    assert not verdict.passed
    args = [
        "gate",
        str(SMOKE_CONFIG),
        "--summary",
        str(summary_file),
        "--golden-dir",
        str(golden_dir),
    ]
    assert main(args) == 1
    assert verdict.markdown() in capsys.readouterr().out


# --- real smoke runs -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_baseline(smoke_cache, tmp_path_factory):
    """Seed 0 of the smoke config trained and evaluated, and a golden file made from it whose
    thresholds fit the tiny smoke model (the rules under test are regression and reproduction)."""
    root = tmp_path_factory.mktemp("gate")
    overrides = [f"paths.data_cache={smoke_cache}", "tracking.wandb.mode=disabled"]
    base = run_seeds(SMOKE_CONFIG, [0], root / "seeds", overrides)
    path = root / "burgers_smoke.json"
    # the tiny smoke corrector is not asked to pay (ratio up to 11)
    thresholds = {
        **THRESHOLDS,
        "nrmse": 10.0,
        "conservation_gap": 100.0,
        "corrected_gain_pct": -1000.0,
    }
    smoke = Golden(path, base.config, base.config_hash, thresholds, DEFAULT_TOLERANCE, [])
    return root, overrides, gate.update_baseline(path, base, previous=smoke)


def _rerun(smoke_baseline, tmp_path, retrain=False, env=None):
    root, overrides, golden = smoke_baseline
    out = tmp_path / "seeds"
    if not retrain:  # reuse the trained seed: only evaluation runs again
        shutil.copytree(root / "seeds", out)
        (out / "seed0" / "metrics.json").unlink()
    judged = run_seeds(SMOKE_CONFIG, [0], out, overrides)
    if env is not None:
        judged = replace(judged, environment={**judged.environment, **env})
    return gate.check(judged, golden)


def test_unbroken_rerun_passes(smoke_baseline, tmp_path):
    verdict = _rerun(smoke_baseline, tmp_path)
    assert verdict.passed and any(c.rule == "reproducibility" for c in verdict.checks)


def test_gate_catches_a_zeroed_corrector(smoke_baseline, tmp_path, monkeypatch):
    import torch

    from ups.eval.surrogate import Surrogate

    load = Surrogate.load.__func__

    def zero_corrector(cls, ctx, corrector):
        surrogate = load(cls, ctx, corrector)
        surrogate.sampler = lambda model, zhat, cond, generator, scale, z: torch.zeros_like(zhat)
        return surrogate

    monkeypatch.setattr(Surrogate, "load", classmethod(zero_corrector))
    failed = _failed(_rerun(smoke_baseline, tmp_path))
    assert ("reproducibility", "nrmse (seed 0) vs baseline") in failed


def test_gate_catches_a_random_encoder(smoke_baseline, tmp_path, monkeypatch):
    import ups.eval.surrogate as surrogate_module
    from ups.stages.autoencoder import build_autoencoder

    monkeypatch.setattr(surrogate_module, "load_autoencoder", build_autoencoder)  # untrained
    assert ("regression", "nrmse mean") in _failed(_rerun(smoke_baseline, tmp_path / "on"))
    off = _rerun(smoke_baseline, tmp_path / "off", env={"cpu": "another"})
    assert ("regression", "nrmse mean") in _failed(off) and "reproducibility" in off.skipped


def test_gate_catches_a_dropped_seed(smoke_baseline, tmp_path, monkeypatch):
    import secrets

    import ups.repro

    monkeypatch.setattr(ups.repro, "stream_seed", lambda seed, stream: secrets.randbits(63))
    failed = _failed(_rerun(smoke_baseline, tmp_path, retrain=True))
    assert any(rule == "reproducibility" for rule, _ in failed)
