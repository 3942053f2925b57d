"""The seeds summary (``seeds.json``): what ``ups seeds`` writes and the gate and analysis read.

One typed home for it, torch-free: each seed's headline metrics, their spread (mean, std with
ddof = 1, CV in percent of |mean|, min, max), each seed's per-trajectory headline values on the
evaluated split, and what besides the config decides the bits (the environment).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ups import atomic

SUMMARY_FILE = "seeds.json"
# The modes a summary's headline can be (``ups.seeds.headline_mode`` picks one per config).
HEADLINE_MODES = ("corrected", "ttc")
# The per-trajectory values a summary keeps of each seed: the gated headline metrics.
TRAJECTORY_METRICS = ("nrmse", "conservation_gap")
# A summary's environment: what besides the config decides a seed's bits (docs/gate.md).
ENV_KEYS = ("cpu", "cpu_id", "cpu_isa", "device", "gpu", "threads", "python", "torch", "numpy")


class SummaryError(ValueError):
    """A seeds summary that is unreadable or lacks what its reader needs; names file and key."""


@dataclass(frozen=True)
class SeedResult:
    """What one seed's run gives the summary: headline metrics and their per-trajectory terms
    (metric -> values (B,), one per trajectory of the evaluated split)."""

    metrics: dict[str, float | None]
    per_trajectory: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class SeedsSummary:
    config: str
    config_name: str
    config_hash: str
    seeds: list[int]
    environment: dict[str, Any]
    headline: str  # the mode whose metrics are per_seed's plain keys: one of HEADLINE_MODES
    per_seed: dict[str, dict[str, float | None]]  # seed (str) -> headline metric -> value
    stats: dict[str, dict[str, float | None]]  # metric -> mean, std, cv_pct, min, max
    per_trajectory: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    devices: dict[str, str] = field(default_factory=dict)  # seed (str) -> device it ran on
    commit: str | None = None  # the git commit the seeds ran at (``-dirty``: uncommitted edits)
    date: str = ""  # YYYY-MM-DD

    @classmethod
    def of_results(cls, results: dict[int, SeedResult], **identity: Any) -> SeedsSummary:
        """The summary of ``results`` (seed -> result); ``identity``: the other fields."""
        per_seed = {str(s): r.metrics for s, r in results.items()}
        trajectories = {str(s): r.per_trajectory for s, r in results.items()}
        return cls(
            seeds=list(results),
            per_seed=per_seed,
            stats=spread(per_seed),
            per_trajectory=trajectories,
            **identity,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: str | Path) -> None:
        atomic.write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, source: str) -> SeedsSummary:
        """Validate ``data`` (parsed JSON) read from ``source``; :class:`SummaryError` naming
        the key when something is missing or of the wrong kind."""
        if not isinstance(data, dict):
            raise SummaryError(f"{source}: a seeds summary is a JSON object, got {_kind(data)}")
        required = (
            "config",
            "config_name",
            "config_hash",
            "seeds",
            "environment",
            "headline",
            "per_seed",
        )
        missing = [k for k in required if k not in data]
        if missing:
            raise SummaryError(
                f"{source}: missing key(s) {missing}; rerun `ups seeds` with the same --out "
                "(finished seeds are re-evaluated, not retrained)"
            )
        if data["headline"] not in HEADLINE_MODES:
            raise SummaryError(
                f"{source}: headline must be one of {HEADLINE_MODES}, got {data['headline']!r}"
            )
        seeds = data["seeds"]
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
            raise SummaryError(f"{source}: seeds must be a non-empty list of integers")
        per_seed = data["per_seed"]
        absent = [s for s in seeds if str(s) not in (per_seed or {})]
        if not isinstance(per_seed, dict) or absent:
            raise SummaryError(f"{source}: per_seed lacks seed(s) {absent}")
        for seed, metrics in per_seed.items():
            _check_numbers(metrics, f"{source}: per_seed['{seed}']")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**{**known, "stats": spread(per_seed)})


def load_summary(path: str | Path) -> SeedsSummary:
    """The summary in ``path`` (a ``seeds.json`` or its folder), validated."""
    path = Path(path)
    path = path / SUMMARY_FILE if path.is_dir() else path
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SummaryError(f"{path} is missing: run `ups seeds CONFIG --out DIR` first") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SummaryError(f"{path} is not a readable JSON seeds summary: {err}") from None
    return SeedsSummary.from_dict(data, str(path))


def spread(per_seed: dict[str, dict[str, float | None]]) -> dict[str, dict[str, float | None]]:
    """Per metric: mean, std (ddof = 1; 0 for one seed), CV in percent of |mean| (None for a
    zero mean), min, max; all None where a seed's value is undefined (None)."""
    keys = next(iter(per_seed.values())).keys()
    out = {}
    for key in keys:
        raw = [m.get(key) for m in per_seed.values()]
        if any(v is None for v in raw):  # undefined for some seed (e.g. no candidate spread)
            out[key] = dict.fromkeys(("mean", "std", "cv_pct", "min", "max"))
            continue
        values = np.array(raw, dtype=np.float64)
        mean = float(values.mean())
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[key] = {
            "mean": mean,
            "std": std,
            "cv_pct": 100.0 * std / abs(mean) if mean != 0 else None,
            "min": float(values.min()),
            "max": float(values.max()),
        }
    return out


def _check_numbers(metrics: Any, where: str) -> None:
    if not isinstance(metrics, dict):
        raise SummaryError(f"{where} must be an object of metrics, got {_kind(metrics)}")
    for key, value in metrics.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise SummaryError(f"{where}['{key}'] must be a number or null, got {value!r}")


def _kind(value: Any) -> str:
    return type(value).__name__
