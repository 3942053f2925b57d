"""``ups seeds``: train and evaluate one run per seed, then summarise the spread.

Each seed is a full run (``ups train`` then ``ups eval`` on the config's split) in
``<out>/seed<N>/``; the summary (``<out>/seeds.json``) holds each seed's headline metrics and,
per metric, mean, standard deviation (ddof = 1) and coefficient of variation in percent.

``devices`` places the seeds round-robin on several GPUs (each worker process gets its own
``device=`` override); a CUDA device this machine lacks falls back to a CPU process, with a
warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ups import atomic
from ups.config import ConfigError, config_hash, load_config
from ups.processes import run_in_processes
from ups.repro import environment_fingerprint
from ups.schema import UpsConfig

SUMMARY_FILE = "seeds.json"


def headline_mode(ttc_enabled: bool) -> str:
    """The mode the gate holds to its thresholds: TTC when on, else operator + corrector (never
    the projection guard, so conservation regressions stay visible)."""
    return "ttc" if ttc_enabled else "corrected"


def headline_metrics(eval_metrics: dict[str, Any], ttc_enabled: bool) -> dict[str, float]:
    """The numbers a seed is judged by, from its flat eval metrics."""
    mode = headline_mode(ttc_enabled)
    out = {
        "nrmse": eval_metrics[f"{mode}/nrmse"],
        "conservation_gap": eval_metrics[f"{mode}/conservation_gap"],
        "operator_nrmse": eval_metrics["operator/nrmse"],
        "corrected_nrmse": eval_metrics["corrected/nrmse"],
        "corrected_conservation_gap": eval_metrics["corrected/conservation_gap"],
    }
    if ttc_enabled:
        out["ttc_improvement_pct"] = eval_metrics["ttc/improvement_pct"]
        out["ttc_score_error_spearman"] = eval_metrics["ttc/score_error_spearman"]
    return out


def run_seed(config: str, overrides: Sequence[str], seed: int, out: str) -> dict[str, float]:
    """Train and evaluate ``config`` at ``seed`` into ``<out>/seed<seed>``; headline metrics."""
    from ups.eval.evaluate import evaluate  # torch-heavy: imported in the worker
    from ups.pipeline import train

    run_dir = Path(out) / f"seed{seed}"
    cfg = load_config(config, [*overrides, f"seed={seed}"])
    if not (run_dir / "run.json").is_file():
        train(cfg, run_dir, progress=False)
    elif any(not (run_dir / "checkpoints" / f"{s}.pt").is_file() for s in cfg.stages):
        train(cfg, run_dir, resume=True, progress=False)  # a killed seed continues bit for bit
    metrics = evaluate(run_dir, progress=False)  # the run's config.yaml holds the overrides
    return headline_metrics(metrics, cfg.ttc.enabled)


def normalize_device(name: str) -> str:
    """``cpu``, ``cuda[:N]`` or a bare GPU index ``N`` -> ``cpu`` or ``cuda:N``."""
    if name == "cpu":
        return name
    index = name.removeprefix("cuda").removeprefix(":") or "0"
    if not index.isdigit():
        raise ConfigError(f"device {name!r} is not 'cpu', 'cuda[:N]' or a GPU index N")
    return f"cuda:{int(index)}"


def assign_devices(seeds: Sequence[int], devices: Sequence[str], gpus: int) -> list[str]:
    """The device of each seed: ``devices`` round-robin; a CUDA device with an index this
    machine's ``gpus`` count lacks becomes ``cpu``, with one warning naming them."""
    if not devices:
        raise ValueError("give at least one device")
    wanted = [normalize_device(devices[i % len(devices)]) for i in range(len(seeds))]
    missing = sorted({d for d in wanted if d != "cpu" and int(d.split(":")[1]) >= gpus})
    if missing:
        warnings.warn(
            f"{', '.join(missing)} not available ({gpus} CUDA device(s) here): "
            "those seeds run as CPU processes",
            RuntimeWarning,
            stacklevel=2,
        )
    return ["cpu" if d in missing else d for d in wanted]


def run_seeds(
    config: str | Path,
    seeds: Sequence[int],
    out: str | Path,
    overrides: Sequence[str] = (),
    jobs: int = 1,
    devices: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run every seed (``jobs`` processes at once; on ``devices`` round-robin if given) and
    write ``<out>/seeds.json``."""
    cfg = load_config(config, overrides)
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"seeds must be distinct and non-empty, got {list(seeds)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    from ups.data.dataset import get_dataset  # torch-heavy, like the workers' imports

    # Built once here: parallel workers would otherwise each generate the same dataset.
    get_dataset(cfg.data, cfg.paths.data_cache, progress=False)
    placed = assign_devices(seeds, devices, _cuda_count()) if devices else [cfg.device] * len(seeds)
    args = [
        (str(config), [*overrides, *([f"device={d}"] if devices else [])], seed, str(out))
        for seed, d in zip(seeds, placed, strict=True)
    ]
    # jobs <= 1 runs here, in this process: also what lets tests monkeypatch run_seed.
    results = run_in_processes(run_seed, args, jobs)
    summary = {
        "config": str(config),
        "config_name": cfg.name,
        "config_hash": config_hash(cfg),
        "overrides": list(overrides),
        "seeds": list(seeds),
        "devices": {str(s): d for s, d in zip(seeds, placed, strict=True)},
        "environment": result_environment(cfg),
        "per_seed": {str(s): r for s, r in zip(seeds, results, strict=True)},
        "stats": spread({str(s): r for s, r in zip(seeds, results, strict=True)}),
    }
    atomic.write_json(out / SUMMARY_FILE, summary)
    return summary


def _cuda_count() -> int:
    import torch  # torch-heavy: only when placing seeds on devices

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def result_environment(cfg: UpsConfig) -> dict[str, Any]:
    """What besides the config decides a seed's exact bits: versions, processor, threads."""
    env = environment_fingerprint(cfg.device)
    keys = ("python", "torch", "numpy", "cpu", "device", "gpu")
    return {**{k: env.get(k) for k in keys}, "threads": cfg.threads}


def spread(per_seed: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per metric: mean, std (ddof = 1; 0 for one seed), CV in percent of |mean| (None for a
    zero mean), min, max; all None where a seed's value is undefined (None)."""
    keys = next(iter(per_seed.values())).keys()
    out = {}
    for key in keys:
        raw = [m[key] for m in per_seed.values()]
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
