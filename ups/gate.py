"""The golden regression gate: run the seeds, hold them to thresholds and to the baseline.

``golden/<config name>.json`` holds the thresholds, the regression tolerance, the baseline
(per-seed headline metrics with their spread) and its provenance. Rules, each reported with its
margin:

- threshold: every seed's headline ``nrmse`` and ``conservation_gap`` below their maxima, and
  the CV of ``nrmse`` across seeds below its maximum;
- regression: for each gated metric, the seeds' mean may exceed the baseline mean by at most
  ``max(std_multiple * baseline std, relative * baseline mean)``;
- identity: the config hash must be the baseline's (another config is reported, not compared);
- reproducibility: where the environment matches the baseline's (python, torch and numpy
  versions, CPU model, threads), every seed must reproduce its baseline numbers exactly: an
  unseeded draw cannot hide inside the tolerance.

Baselines change only through :func:`update_baseline` (``ups gate --update``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ups import atomic
from ups.repro import environment_fingerprint

DEFAULT_THRESHOLDS = {"nrmse": 0.085, "conservation_gap": 2.0, "nrmse_cv_pct": 5.0}
DEFAULT_TOLERANCE = {"std_multiple": 3.0, "relative": 0.10}
GATED_METRICS = ("nrmse", "conservation_gap")  # lower is better


class GoldenMissingError(FileNotFoundError):
    """No baseline for this config yet: it must be created explicitly."""


class BaselineRejectedError(ValueError):
    """Seeds that fail a threshold cannot become the baseline."""


@dataclass(frozen=True)
class Check:
    """One rule applied to one number; ``passed`` is ``value < limit``."""

    rule: str
    metric: str
    value: float
    limit: float

    @property
    def passed(self) -> bool:
        return self.value < self.limit

    @property
    def margin(self) -> float:
        """How far below (positive) or above (negative) the limit the value is."""
        return self.limit - self.value


def golden_path(golden_dir: str | Path, config_name: str) -> Path:
    return Path(golden_dir) / f"{config_name}.json"


def load_golden(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise GoldenMissingError(
            f"{path} is missing: create the baseline explicitly with `ups gate CONFIG --update` "
            "and commit it for review"
        )
    return json.loads(path.read_text())


def check(summary: dict[str, Any], golden: dict[str, Any]) -> list[Check]:
    """Every rule's check of a seeds summary (:func:`ups.seeds.run_seeds`) against ``golden``."""
    checks = threshold_checks(summary, golden["thresholds"])
    if summary["config_hash"] != golden["config_hash"]:
        return [*checks, Check("identity", "config_hash differs from the golden's", 1.0, 0.0)]
    base, tol = golden["baseline"]["stats"], golden["tolerance"]
    for metric in GATED_METRICS:
        allowed = max(
            tol["std_multiple"] * base[metric]["std"], tol["relative"] * base[metric]["mean"]
        )
        mean = summary["stats"][metric]["mean"]
        checks.append(Check("regression", f"{metric} mean", mean, base[metric]["mean"] + allowed))
    if summary.get("environment") == golden["provenance"].get("environment"):
        checks += reproducibility_checks(summary, golden["baseline"]["per_seed"])
    return checks


def reproducibility_checks(summary: dict[str, Any], baseline: dict[str, Any]) -> list[Check]:
    """Seeds the baseline also ran must give its numbers exactly (|difference| < 1e-12)."""
    return [
        Check("reproducibility", f"{metric} (seed {seed}) vs baseline", _gap(v[metric], b), 1e-12)
        for seed, v in summary["per_seed"].items()
        if seed in baseline
        for metric, b in baseline[seed].items()
        if metric in v
    ]


def _gap(value: float | None, baseline: float | None) -> float:
    """|value - baseline|; undefined (None) matches only undefined."""
    if value is None or baseline is None:
        return 0.0 if value is baseline else float("inf")
    return abs(value - baseline)


def threshold_checks(summary: dict[str, Any], thresholds: dict[str, float]) -> list[Check]:
    per_seed = summary["per_seed"]
    checks = [
        Check("threshold", f"{metric} (seed {seed})", values[metric], thresholds[metric])
        for metric in GATED_METRICS
        for seed, values in per_seed.items()
    ]
    cv = summary["stats"]["nrmse"]["cv_pct"]
    checks.append(Check("threshold", "nrmse CV % across seeds", cv, thresholds["nrmse_cv_pct"]))
    return checks


def update_baseline(
    path: Path, summary: dict[str, Any], previous: dict[str, Any] | None
) -> dict[str, Any]:
    """Write ``summary`` as the new baseline, keeping the thresholds and tolerance of
    ``previous`` (or the defaults for a first baseline). Raises :class:`BaselineRejectedError`,
    writing nothing, when the seeds fail any of those thresholds."""
    thresholds = (previous or {}).get("thresholds", DEFAULT_THRESHOLDS)
    failing = [c for c in threshold_checks(summary, thresholds) if not c.passed]
    if failing:
        reasons = "; ".join(f"{c.metric} = {c.value:.4g}, limit {c.limit:.4g}" for c in failing)
        raise BaselineRejectedError(f"{path} not written: the seeds fail {reasons}")
    env = environment_fingerprint("cpu")
    golden = {
        "config": summary["config"],
        "config_hash": summary["config_hash"],
        "thresholds": thresholds,
        "tolerance": (previous or {}).get("tolerance", DEFAULT_TOLERANCE),
        "baseline": {"per_seed": summary["per_seed"], "stats": summary["stats"]},
        "provenance": {
            "commit": env.get("git_commit"),
            "config_hash": summary["config_hash"],
            "versions": {k: env[k] for k in ("python", "torch", "numpy") if k in env},
            "device": env.get("device"),
            "cpu": env.get("cpu"),
            "threads": env.get("torch_threads"),
            "date": time.strftime("%Y-%m-%d"),
            "seeds": summary["seeds"],
            "environment": summary["environment"],
        },
    }
    atomic.write_json(path, golden)
    return golden


def markdown_table(checks: list[Check], summary: dict[str, Any]) -> str:
    """The gate's verdict as Markdown, fit for a PR comment."""
    failed = [c for c in checks if not c.passed]
    verdict = "FAILED" if failed else "passed"
    lines = [
        f"### ups gate: {summary['config_name']} — {verdict}",
        "",
        f"seeds {summary['seeds']}, config {summary['config_hash'][:12]}",
        "",
        "| rule | metric | value | limit | margin | |",
        "|---|---|---|---|---|---|",
    ]
    for c in checks:
        mark = "pass" if c.passed else "**FAIL**"
        lines.append(
            f"| {c.rule} | {c.metric} | {c.value:.4g} | {c.limit:.4g} | {c.margin:+.3g} | {mark} |"
        )
    return "\n".join(lines) + "\n\n" + seeds_table(summary)


def seeds_table(summary: dict[str, Any]) -> str:
    """Each seed's headline metrics with their mean, std and CV, as Markdown."""
    seeds = summary["seeds"]
    lines = ["| metric | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | std | CV % |"]
    lines.append("|---" * (len(seeds) + 4) + "|")
    for metric, stats in summary["stats"].items():
        values = " | ".join(_fmt(summary["per_seed"][str(s)][metric], ".4g") for s in seeds)
        lines.append(
            f"| {metric} | {values} | {_fmt(stats['mean'], '.4g')} | {_fmt(stats['std'], '.3g')} "
            f"| {_fmt(stats['cv_pct'], '.2f')} |"
        )
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)
