"""The golden file ``golden/<config name>.json``, validated on load.

Thresholds and the regression tolerance are shared; the baselines are one entry per environment
(python, torch and numpy versions, CPU model name, vendor/family/model/stepping and the
instruction set torch's kernels use, device, GPU, threads: what besides the config decides a
seed's bits). An entry holds each seed's headline metrics, their per-trajectory terms
on the evaluated split, the spread (for review; it must agree with the metrics) and provenance.
The file changes only through ``ups gate CONFIG --update``, which adds or replaces the entry of
the environment the seeds ran in. docs/gate.md says how the gate uses it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ups import atomic
from ups.summary import ENV_KEYS, TRAJECTORY_METRICS, spread

FORMAT = 3
# Format 2 named the CPU by its model name alone, so its entries cannot be placed in a format-3
# environment: ``ups gate --update`` keeps such a file's thresholds and tolerance, and its
# baselines are rerun.
UPGRADABLE_FORMAT = 2
GATED_METRICS = ("nrmse", "conservation_gap")  # lower is better
THRESHOLD_KEYS = ("nrmse", "conservation_gap", "nrmse_cv_pct", "corrected_gain_pct", "ttc_gain_pct")
# corrected_gain_pct: how much lower (%) the seeds' mean corrected nRMSE must be than their mean
# operator nRMSE, so a corrector that stops paying fails the gate; ttc_gain_pct: the same of a
# TTC headline against the corrected mode, applied when the seeds ran TTC (docs/gate.md).
DEFAULT_THRESHOLDS = {
    "nrmse": 0.085,
    "conservation_gap": 2.0,
    "nrmse_cv_pct": 5.0,
    "corrected_gain_pct": 0.0,
    "ttc_gain_pct": 0.0,
}
# The regression rule's one-sided false-alarm rate per metric, the spread of seed means (CV %)
# of the golden recipe measured on 9 seeds, and each metric's floor: a seeds' mean below it is
# never a regression (a mass-conserving step's gap is float32 rounding, ~1e-5 %, whose size
# another device may double). docs/gate.md, docs/results.md.
DEFAULT_TOLERANCE = {
    "alpha": 0.01,
    "seed_cv_pct": {"nrmse": 5.10, "conservation_gap": 2.65},
    "floor": {"nrmse": 0.0, "conservation_gap": 1.0e-3},
}


class GoldenMissingError(FileNotFoundError):
    """No baseline for this config yet: it must be created explicitly."""


class GoldenFileError(ValueError):
    """A golden file that is unreadable, of another format, or incomplete; names file and key."""


@dataclass(frozen=True)
class Baseline:
    """One environment's baseline: the numbers its seeds gave."""

    environment: dict[str, Any]
    seeds: list[int]
    per_seed: dict[str, dict[str, float | None]]
    per_trajectory: dict[str, dict[str, list[float]]]
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def stats(self) -> dict[str, dict[str, float | None]]:
        return spread(self.per_seed)

    @property
    def label(self) -> str:
        return environment_label(self.environment)

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "seeds": self.seeds,
            "per_seed": self.per_seed,
            "stats": self.stats,
            "per_trajectory": self.per_trajectory,
            "provenance": self.provenance,
        }


@dataclass(frozen=True)
class Golden:
    path: Path
    config: str
    config_hash: str
    thresholds: dict[str, float]
    tolerance: dict[str, float]
    baselines: list[Baseline]

    def entry_for(self, environment: dict[str, Any]) -> tuple[Baseline, bool]:
        """The baseline of ``environment`` and True, or else the nearest one (most equal
        fingerprint fields, the first on a tie) and False."""
        for entry in self.baselines:
            if same_environment(entry.environment, environment):
                return entry, True
        score = [
            sum(e.environment.get(k) == environment.get(k) for k in ENV_KEYS)
            for e in self.baselines
        ]
        return self.baselines[score.index(max(score))], False

    def with_baseline(self, baseline: Baseline) -> Golden:
        """This file with ``baseline`` replacing the entry of its environment, or added."""
        kept = [
            b for b in self.baselines if not same_environment(b.environment, baseline.environment)
        ]
        return replace(self, baselines=[*kept, baseline])

    def write(self) -> None:
        atomic.write_json(
            self.path,
            {
                "format": FORMAT,
                "config": self.config,
                "config_hash": self.config_hash,
                "thresholds": self.thresholds,
                "tolerance": self.tolerance,
                "baselines": [b.to_dict() for b in self.baselines],
            },
        )


def golden_path(golden_dir: str | Path, config_name: str) -> Path:
    return Path(golden_dir) / f"{config_name}.json"


def same_environment(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ENV_KEYS)


def environment_label(env: dict[str, Any]) -> str:
    """E.g. ``cpu AMD EPYC (AuthenticAMD family 26 model 2 stepping 1, AVX512), 1 thread(s),
    torch 2.13.0+cpu``."""
    cpu = f"cpu {env.get('cpu')} ({env.get('cpu_id')}, {env.get('cpu_isa')})"
    where = f"gpu {env.get('gpu')}" if env.get("gpu") else cpu
    return f"{where}, {env.get('threads')} thread(s), torch {env.get('torch')}"


def environment_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    """The fingerprint fields that differ, e.g. ``cpu AMD EPYC vs Intel Xeon``."""
    return "; ".join(f"{k} {a.get(k)} vs {b.get(k)}" for k in ENV_KEYS if a.get(k) != b.get(k))


def load_golden(path: str | Path, upgrade: bool = False) -> Golden:
    """The validated golden file at ``path``: :class:`GoldenMissingError` if there is none,
    :class:`GoldenFileError` naming the key if it is broken or incomplete. A file of
    UPGRADABLE_FORMAT is refused, or with ``upgrade`` (``ups gate --update``) read without its
    baselines."""
    path = Path(path)
    if not path.is_file():
        raise GoldenMissingError(
            f"{path} is missing: create the baseline explicitly with `ups gate CONFIG --update` "
            "and commit it for review"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise GoldenFileError(f"{path} is not readable JSON ({err}); restore it from git") from None
    return _parse(data, _Where(str(path)), upgrade)


class _Where:
    """Builds error messages that name the file and the key."""

    def __init__(self, source: str, key: str = ""):
        self.source, self.key = source, key

    def at(self, key: str | int) -> _Where:
        part = f"[{key}]" if isinstance(key, int) else (f".{key}" if self.key else key)
        return _Where(self.source, f"{self.key}{part}")

    def fail(self, problem: str) -> GoldenFileError:
        where = f"{self.key}: " if self.key else ""
        return GoldenFileError(
            f"{self.source}: {where}{problem}; a golden file changes only through "
            "`ups gate CONFIG --update` (restore it from git)"
        )


def _parse(data: Any, where: _Where, upgrade: bool) -> Golden:
    obj = _object(
        data, where, ("format", "config", "config_hash", "thresholds", "tolerance", "baselines")
    )
    if obj["format"] == UPGRADABLE_FORMAT and not upgrade:
        raise GoldenFileError(
            f"{where.source}: format {UPGRADABLE_FORMAT} names the CPU by its model name alone, "
            "which does not tell processor generations apart; rewrite it with `ups gate CONFIG "
            "--update` (its thresholds and tolerance are kept, its baselines rerun) and commit it"
        )
    if obj["format"] not in (FORMAT, UPGRADABLE_FORMAT):
        raise where.at("format").fail(f"format {obj['format']!r}, this ups reads format {FORMAT}")
    for key in ("config", "config_hash"):
        if not isinstance(obj[key], str) or not obj[key]:
            raise where.at(key).fail("must be a non-empty string")
    thresholds = _numbers(obj["thresholds"], where.at("thresholds"), THRESHOLD_KEYS)
    tolerance = _object(obj["tolerance"], where.at("tolerance"), tuple(DEFAULT_TOLERANCE))
    _numbers(tolerance, where.at("tolerance"), ("alpha",))
    if not 0 < tolerance["alpha"] < 0.5:
        raise where.at("tolerance").at("alpha").fail("must be in (0, 0.5)")
    for key in ("seed_cv_pct", "floor"):  # one number >= 0 per gated metric
        per_metric = _numbers(tolerance[key], where.at("tolerance").at(key), GATED_METRICS)
        if not all(per_metric[m] >= 0 for m in GATED_METRICS):
            raise where.at("tolerance").at(key).fail("must be >= 0")
    entries = obj["baselines"]
    if not isinstance(entries, list) or not entries:
        raise where.at("baselines").fail("must be a non-empty list of baselines")
    if obj["format"] == UPGRADABLE_FORMAT:  # read for an update: its entries are rerun
        entries = []
    baselines = [_baseline(e, where.at("baselines").at(i)) for i, e in enumerate(entries)]
    return Golden(
        Path(where.source), obj["config"], obj["config_hash"], thresholds, tolerance, baselines
    )


def _baseline(data: Any, where: _Where) -> Baseline:
    keys = ("environment", "seeds", "per_seed", "stats", "per_trajectory", "provenance")
    obj = _object(data, where, keys)
    env = _object(obj["environment"], where.at("environment"), ENV_KEYS)
    seeds = obj["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds):
        raise where.at("seeds").fail("must be a non-empty list of integers")
    per_seed = _object(obj["per_seed"], where.at("per_seed"), [str(s) for s in seeds])
    for seed in map(str, seeds):
        _numbers(per_seed[seed], where.at("per_seed").at(seed), GATED_METRICS, optional=True)
    trajectories = _object(
        obj["per_trajectory"], where.at("per_trajectory"), [str(s) for s in seeds]
    )
    lengths = {
        len(_values(trajectories[str(s)], where.at("per_trajectory").at(str(s)), m))
        for s in seeds
        for m in TRAJECTORY_METRICS
    }
    if len(lengths) != 1:
        raise where.at("per_trajectory").fail(
            f"seeds hold different numbers of trajectories {sorted(lengths)}"
        )
    baseline = Baseline(
        env, seeds, per_seed, trajectories, _object(obj["provenance"], where.at("provenance"), ())
    )
    if not _close(obj["stats"], baseline.stats):
        raise where.at("stats").fail("disagrees with per_seed")
    return baseline


def _object(data: Any, where: _Where, required) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise where.fail(f"must be a JSON object, got {type(data).__name__}")
    missing = [k for k in required if k not in data]
    if missing:
        raise where.fail(f"missing key(s) {missing}")
    return data


def _numbers(data: Any, where: _Where, required, optional: bool = False) -> dict[str, Any]:
    """``data`` must hold each ``required`` key as a finite number (other keys, if
    ``optional``, a number or null)."""
    obj = _object(data, where, required)
    for key, value in obj.items():
        if key not in required and (not optional or value is None):
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise where.at(key).fail(f"must be a finite number, got {value!r}")
    return obj


def _values(data: Any, where: _Where, metric: str) -> list[float]:
    values = _object(data, where, (metric,))[metric]
    if (
        not isinstance(values, list)
        or not values
        or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        )
    ):
        raise where.at(metric).fail("must be a non-empty list of finite numbers")
    return values


def _close(stored: Any, derived: dict[str, dict[str, float | None]]) -> bool:
    """Stored stats equal the ones derived from per_seed (to 1e-12 relative)."""
    if not isinstance(stored, dict) or set(stored) != set(derived):
        return False
    for metric, stats in derived.items():
        if not isinstance(stored[metric], dict) or set(stored[metric]) != set(stats):
            return False
        for key, value in stats.items():
            other = stored[metric][key]
            if value is None or other is None:
                if value is not other:
                    return False
            elif not isinstance(other, (int, float)) or not math.isclose(
                other, value, rel_tol=1e-12, abs_tol=1e-15
            ):
                return False
    return True
