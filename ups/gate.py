"""The golden regression gate: run the seeds, hold them to thresholds and to their baseline.

Rules, each reported with its margin (docs/gate.md has the table and the measured power):

- threshold: every seed's headline ``nrmse`` and ``conservation_gap`` below their maxima, and
  those of each mode the headline builds on (the operator's; with TTC, the corrected mode's),
  and the CV of ``nrmse`` across seeds below its maximum (shared by every environment);
- refinement: the seeds' mean ``corrected_nrmse`` at least ``corrected_gain_pct`` percent
  below their mean ``operator_nrmse``, and with a TTC headline its mean ``nrmse`` at least
  ``ttc_gain_pct`` below the corrected mode's (shared by every environment);
- identity: the config hash must be the golden file's (another config is reported, not compared);
- completeness: every seed and metric of the baseline is in the summary judged;
- reproducibility: where the golden file has an entry for this environment, every seed must
  reproduce its numbers exactly, so an unseeded draw cannot hide inside a tolerance; elsewhere
  the rule is skipped, and the output says why;
- regression: for each gated metric, the seeds' mean may exceed the baseline mean (this
  environment's entry, or else the nearest one, stated) by at most what chance explains: a
  one-sided test at the golden file's ``tolerance.alpha`` whose standard error is the larger of
  the spread between seed means and the spread of the per-trajectory differences; a mean
  below the metric's ``tolerance.floor`` (rounding, not physics) passes.

Baselines change only through :func:`update_baseline` (``ups gate --update``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.stats

from ups import golden as golden_file
from ups.golden import GATED_METRICS, Baseline, Golden
from ups.summary import TRAJECTORY_METRICS, SeedsSummary, load_summary

REPRODUCTION_TOLERANCE = 1e-12


class BaselineRejectedError(ValueError):
    """Seeds that fail a threshold cannot become the baseline."""


@dataclass(frozen=True)
class Check:
    """One rule applied to one number: passed when ``value < limit`` (``<=`` if inclusive)."""

    rule: str
    metric: str
    value: float
    limit: float
    inclusive: bool = False

    @property
    def passed(self) -> bool:
        return self.value <= self.limit if self.inclusive else self.value < self.limit

    @property
    def margin(self) -> float:
        """How far below (positive) or above (negative) the limit the value is."""
        return self.limit - self.value


@dataclass(frozen=True)
class Verdict:
    """What the gate decided: every check, the rules it skipped (with why) and notes."""

    summary: SeedsSummary
    checks: list[Check]
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def passed(self) -> bool:
        return not self.failed

    def markdown(self) -> str:
        return markdown_table(self)


def run(
    config: str | Path,
    seeds: Sequence[int] | None = None,
    overrides: Sequence[str] = (),
    *,
    out: str | Path | None = None,
    jobs: int = 1,
    devices: Sequence[str] | None = None,
    golden_dir: str | Path = "golden",
    summary: str | Path | None = None,
    update: bool = False,
) -> Verdict:
    """Run ``seeds`` of ``config`` (or read ``summary``), then judge them against
    ``golden_dir/<name>.json``; with ``update``, first write their baseline."""
    from ups.config import config_hash, load_config
    from ups.seeds import default_out, run_seeds

    cfg = load_config(config, overrides)
    path = golden_file.golden_path(golden_dir, cfg.name)
    try:
        golden = golden_file.load_golden(path, upgrade=update)
    except golden_file.GoldenMissingError:
        if not update:
            raise
        golden = None
    if summary is not None:
        judged = load_summary(summary)
    else:
        seeds = list(
            seeds or (golden.baselines[0].seeds if golden and golden.baselines else [0, 1, 2])
        )
        where = out or default_out(cfg.paths.runs, cfg.name, config_hash(cfg))
        judged = run_seeds(config, seeds, where, overrides, jobs, devices=devices)
    if update:
        golden = update_baseline(path, judged, golden)
    return check(judged, golden)


def check(summary: SeedsSummary, golden: Golden) -> Verdict:
    """Every rule's verdict on ``summary`` against ``golden``."""
    checks = threshold_checks(summary, golden.thresholds)
    if summary.config_hash != golden.config_hash:
        why = "the config differs from the golden's"
        checks.append(Check("identity", "config_hash differs from the golden's", 1.0, 0.0))
        return Verdict(summary, checks, dict.fromkeys(("reproducibility", "regression"), why))
    entry, exact = golden.entry_for(summary.environment)
    skipped, notes = {}, []
    here = golden_file.environment_label(summary.environment)
    checks += completeness_checks(summary, entry)
    if exact:
        notes.append(f"baseline of this environment ({here})")
        checks += reproducibility_checks(summary, entry)
    else:
        diff = golden_file.environment_difference(summary.environment, entry.environment)
        notes.append(
            f"no baseline for this environment ({here}): regression judged against the "
            f"nearest entry ({entry.label})"
        )
        skipped["reproducibility"] = f"environment differs: {diff}"
    checks += regression_checks(summary, entry, golden.tolerance)
    return Verdict(summary, checks, skipped, notes)


def threshold_checks(summary: SeedsSummary, thresholds: dict[str, float]) -> list[Check]:
    """Every seed's headline and each mode below it under the nRMSE and gap maxima, the
    headline's CV, and the refinement rule of each stage the headline builds on."""
    ttc = is_ttc_headline(summary)
    checks = [
        Check("threshold", f"{key} (seed {seed})", _number(values.get(key)), thresholds[metric])
        for metric in GATED_METRICS
        for key in (metric, *(f"{mode}_{metric}" for mode in modes_below_headline(ttc)))
        for seed, values in summary.per_seed.items()
    ]
    cv = _number(summary.stats["nrmse"]["cv_pct"])
    checks.append(Check("threshold", "nrmse CV % across seeds", cv, thresholds["nrmse_cv_pct"]))
    checks.append(
        refinement_check(summary, "corrected", "operator", thresholds["corrected_gain_pct"])
    )
    if ttc:
        checks.append(refinement_check(summary, "ttc", "corrected", thresholds["ttc_gain_pct"]))
    return checks


def is_ttc_headline(summary: SeedsSummary) -> bool:
    """Whether the seeds' headline is TTC, as their summary records it."""
    return summary.headline == "ttc"


def modes_below_headline(ttc: bool) -> tuple[str, ...]:
    """The modes a headline builds on, each held to the thresholds too."""
    return ("operator", "corrected") if ttc else ("operator",)


def refinement_check(summary: SeedsSummary, mode: str, base: str, gain_pct: float) -> Check:
    """A refinement pays: the seeds' mean nRMSE of ``mode`` is at least ``gain_pct`` percent
    below their mean nRMSE of ``base`` (the plain ``nrmse`` for the summary's headline mode).
    The value is their ratio; a seed without either fails."""
    keys = ["nrmse" if m == summary.headline else f"{m}_nrmse" for m in (mode, base)]
    means = [
        np.mean([_number(values.get(key)) for values in summary.per_seed.values()]) for key in keys
    ]
    ratio = float(means[0] / means[1]) if math.isfinite(means[1]) else math.inf
    metric = f"{mode} / {base} nrmse (seeds' mean)"
    return Check("refinement", metric, ratio, 1 - gain_pct / 100, True)


def completeness_checks(summary: SeedsSummary, entry: Baseline) -> list[Check]:
    """The summary must hold every seed, metric and per-trajectory series of the baseline."""
    missing = []
    for seed in map(str, entry.seeds):
        if seed not in summary.per_seed:
            missing.append(f"seed {seed}")
            continue
        missing += [
            f"{m} (seed {seed})" for m in entry.per_seed[seed] if m not in summary.per_seed[seed]
        ]
        series = summary.per_trajectory.get(seed, {})
        missing += [
            f"per-trajectory {m} (seed {seed})" for m in TRAJECTORY_METRICS if m not in series
        ]
    label = "missing: " + ", ".join(missing) if missing else "every seed and metric of the baseline"
    return [Check("completeness", label, float(len(missing)), 0.0, inclusive=True)]


def reproducibility_checks(summary: SeedsSummary, entry: Baseline) -> list[Check]:
    """Seeds the baseline also ran must give its numbers exactly."""
    return [
        Check(
            "reproducibility",
            f"{metric} (seed {seed}) vs baseline",
            _gap(summary.per_seed[seed].get(metric), value),
            REPRODUCTION_TOLERANCE,
        )
        for seed in map(str, entry.seeds)
        if seed in summary.per_seed
        for metric, value in entry.per_seed[seed].items()
        if metric in summary.per_seed[seed]
    ]


def regression_checks(summary: SeedsSummary, entry: Baseline, tolerance: dict) -> list[Check]:
    """Per gated metric: the seeds' mean against the baseline mean plus the one-sided
    ``1 - alpha`` quantile of chance (:func:`regression_limit`), or the metric's floor if
    higher."""
    checks = []
    for metric in GATED_METRICS:
        new = _series(summary.per_seed, summary.per_trajectory, metric)
        base = _series(entry.per_seed, entry.per_trajectory, metric)
        if new is None or base is None:
            continue  # completeness has already failed, naming what is missing
        cv = tolerance["seed_cv_pct"][metric] / 100
        limit = regression_limit(new, base, tolerance["alpha"], cv)
        if math.isfinite(limit):  # -inf: another split, which fails whatever the floor
            limit = max(limit, tolerance["floor"][metric])
        checks.append(Check("regression", f"{metric} mean", float(np.mean(new[0])), limit, True))
    return checks


def regression_limit(new: tuple, base: tuple, alpha: float, seed_cv: float) -> float:
    """Baseline mean + z_{1-alpha} * SE for ``(seed means (S,), per-trajectory values (S, B))``
    of each side.

    SE is the larger of two estimates of the noise in the difference of the means: the golden
    recipe's measured spread of seed means (``seed_cv``, a fraction of the baseline mean) over
    both sides' seed counts, and the spread of the per-trajectory differences of the
    seed-averaged values, which also grows when the judged seeds scatter more.
    """
    (m_new, x_new), (m_base, x_base) = new, base
    if x_new.shape[1] != x_base.shape[1]:
        return -math.inf  # another split: nothing to compare, so the rule fails visibly
    d = x_new.mean(axis=0) - x_base.mean(axis=0)
    per_trajectory = float(np.std(d, ddof=1)) / math.sqrt(len(d))
    between_seeds = seed_cv * float(np.mean(m_base)) * math.sqrt(1 / len(m_new) + 1 / len(m_base))
    z = float(scipy.stats.norm.ppf(1 - alpha))
    return float(np.mean(m_base)) + z * max(per_trajectory, between_seeds)


def _series(per_seed, per_trajectory, metric):
    """(seed means (S,), per-trajectory values (S, B)) of ``metric``, or None if incomplete."""
    seeds = sorted(per_seed)
    if any(
        per_seed[s].get(metric) is None or metric not in per_trajectory.get(s, {}) for s in seeds
    ):
        return None
    lengths = {len(per_trajectory[s][metric]) for s in seeds}
    if len(lengths) != 1:
        return None
    means = np.array([per_seed[s][metric] for s in seeds], dtype=np.float64)
    return means, np.array([per_trajectory[s][metric] for s in seeds], dtype=np.float64)


def update_baseline(path: Path, summary: SeedsSummary, previous: Golden | None) -> Golden:
    """Write ``summary`` as the baseline of its environment, keeping the thresholds, tolerance
    and other environments' entries of ``previous`` (defaults for a first baseline; a new config
    hash voids the old config's entries). Raises :class:`BaselineRejectedError`, writing nothing,
    when the seeds fail a threshold or lack their per-trajectory values."""
    thresholds = previous.thresholds if previous else golden_file.DEFAULT_THRESHOLDS
    failing = [c for c in threshold_checks(summary, thresholds) if not c.passed]
    if failing:
        reasons = "; ".join(f"{c.metric} = {c.value:.4g}, limit {c.limit:.4g}" for c in failing)
        raise BaselineRejectedError(f"{path} not written: the seeds fail {reasons}")
    incomplete = [s for s in map(str, summary.seeds) if not summary.per_trajectory.get(s)]
    if incomplete:
        raise BaselineRejectedError(
            f"{path} not written: no per-trajectory values for seeds {incomplete}"
        )
    baseline = Baseline(
        environment=summary.environment,
        seeds=summary.seeds,
        per_seed=summary.per_seed,
        per_trajectory={s: summary.per_trajectory[s] for s in map(str, summary.seeds)},
        provenance={"commit": summary.commit, "date": summary.date, "devices": summary.devices},
    )
    if previous is None or previous.config_hash != summary.config_hash:
        golden = Golden(
            Path(path),
            summary.config,
            summary.config_hash,
            thresholds,
            previous.tolerance if previous else golden_file.DEFAULT_TOLERANCE,
            [baseline],
        )
    else:
        golden = previous.with_baseline(baseline)
    golden.write()
    return golden


def markdown_table(verdict: Verdict) -> str:
    """The gate's verdict as Markdown, fit for a PR comment."""
    summary = verdict.summary
    lines = [
        f"### ups gate: {summary.config_name} — {'passed' if verdict.passed else 'FAILED'}",
        "",
        f"seeds {summary.seeds}, config {summary.config_hash[:12]}",
        "",
        *(f"- {note}" for note in verdict.notes),
        *(f"- {rule}: skipped, {why}" for rule, why in verdict.skipped.items()),
        "",
        "| rule | metric | value | limit | margin | |",
        "|---|---|---|---|---|---|",
    ]
    for c in verdict.checks:
        mark = "pass" if c.passed else "**FAIL**"
        lines.append(
            f"| {c.rule} | {c.metric} | {c.value:.4g} | {c.limit:.4g} | {c.margin:+.3g} | {mark} |"
        )
    return "\n".join(lines) + "\n\n" + seeds_table(summary)


def seeds_table(summary: SeedsSummary) -> str:
    """Each seed's headline metrics with their mean, std and CV, as Markdown."""
    seeds = summary.seeds
    lines = ["| metric | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | std | CV % |"]
    lines.append("|---" * (len(seeds) + 4) + "|")
    for metric, stats in summary.stats.items():
        values = " | ".join(_fmt(summary.per_seed[str(s)].get(metric), ".4g") for s in seeds)
        lines.append(
            f"| {metric} | {values} | {_fmt(stats['mean'], '.4g')} | {_fmt(stats['std'], '.3g')} "
            f"| {_fmt(stats['cv_pct'], '.2f')} |"
        )
    return "\n".join(lines) + "\n"


def _gap(value: float | None, baseline: float | None) -> float:
    """|value - baseline|; undefined (None) matches only undefined."""
    if value is None or baseline is None:
        return 0.0 if value is baseline else math.inf
    return abs(value - baseline)


def _number(value: float | None) -> float:
    """A metric for a threshold: undefined (None) fails every limit."""
    return math.inf if value is None else float(value)


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)
