"""``ups seeds``: train and evaluate one run per seed, then summarise the spread.

Each seed is a full run (``ups train`` then ``ups eval`` on the config's split) in
``<out>/seed<N>/``; the summary (``<out>/seeds.json``, :class:`ups.summary.SeedsSummary`) holds
each seed's headline metrics and their per-trajectory terms, and per metric the spread.

``devices`` places the seeds round-robin on several GPUs (each worker process gets its own
``device=`` override); a CUDA device this machine lacks falls back to a CPU process, with a
warning.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ups.config import ConfigError, config_hash, evaluation_overrides, load_config
from ups.processes import run_in_processes
from ups.repro import environment_fingerprint
from ups.schema import UpsConfig
from ups.summary import ENV_KEYS, SUMMARY_FILE, TRAJECTORY_METRICS, SeedResult, SeedsSummary


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
        "operator_conservation_gap": eval_metrics["operator/conservation_gap"],
        "corrected_nrmse": eval_metrics["corrected/nrmse"],
        "corrected_conservation_gap": eval_metrics["corrected/conservation_gap"],
    }
    if ttc_enabled:
        out["ttc_improvement_pct"] = eval_metrics["ttc/improvement_pct"]
        out["ttc_score_error_spearman"] = eval_metrics["ttc/score_error_spearman"]
    return out


def run_seed(config: str, overrides: Sequence[str], seed: int, out: str) -> SeedResult:
    """Train and evaluate ``config`` at ``seed`` into ``<out>/seed<seed>``: its headline
    metrics and their per-trajectory terms."""
    from ups.eval.evaluate import evaluate  # torch-heavy: in the worker
    from ups.pipeline import train
    from ups.records import require_same_training, run_status

    run_dir = Path(out) / f"seed{seed}"
    cfg = load_config(config, [*overrides, f"seed={seed}"], run_here=True)
    if not (run_dir / "run.json").is_file():
        train(cfg, run_dir, progress=False)
        return _evaluated(cfg, run_dir, evaluate(run_dir, progress=False))
    trained = require_same_training(
        run_dir, cfg, "; pass another --out, or delete that folder to retrain it"
    )
    if run_status(run_dir) != "finished":
        train(cfg, run_dir, resume=True, progress=False)  # a killed seed continues bit for bit
    # A finished run is evaluated as ``config`` asks, not as its own config.yaml once did.
    overrides = evaluation_overrides(trained, cfg)
    return _evaluated(cfg, run_dir, evaluate(run_dir, overrides, progress=False))


def _evaluated(cfg: UpsConfig, run_dir: Path, metrics: dict[str, Any]) -> SeedResult:
    """The seed's headline metrics and per-trajectory terms from its evaluation."""
    from ups.eval.evaluate import PER_TRAJECTORY_FILE

    mode = headline_mode(cfg.ttc.enabled)
    with np.load(run_dir / "eval" / cfg.eval.split / PER_TRAJECTORY_FILE) as arrays:
        per_trajectory = {m: arrays[f"{mode}/{m}"].tolist() for m in TRAJECTORY_METRICS}
    return SeedResult(headline_metrics(metrics, cfg.ttc.enabled), per_trajectory)


def default_out(runs: str | Path, config_name: str, hash_: str) -> Path:
    """Where the seed runs of a config go unless told: ``<runs>/seeds-<name>-<hash[:8]>``."""
    return Path(runs) / f"seeds-{config_name}-{hash_[:8]}"


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
) -> SeedsSummary:
    """Run every seed (``jobs`` processes at once; on ``devices`` round-robin if given) and
    write ``<out>/seeds.json``."""
    cfg = load_config(config, overrides, run_here=not devices)  # devices override cfg.device
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"seeds must be distinct and non-empty, got {list(seeds)}")
    if cfg.eval.corrector not in cfg.stages:  # refused before any seed trains
        raise ConfigError(
            f"{config}: stages {list(cfg.stages)} lack '{cfg.eval.corrector}' (eval.corrector), "
            "and the headline of every seed is the corrected mode; add it to stages or set "
            "eval.corrector to a stage they train"
        )
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
    summary = SeedsSummary.of_results(
        dict(zip(seeds, results, strict=True)),
        config=str(config),
        config_name=cfg.name,
        config_hash=config_hash(cfg),
        environment=result_environment(cfg),
        headline=headline_mode(cfg.ttc.enabled),
        overrides=list(overrides),
        devices={str(s): d for s, d in zip(seeds, placed, strict=True)},
        commit=environment_fingerprint(cfg.device).get("git_commit"),
        date=time.strftime("%Y-%m-%d"),
    )
    summary.write(out / SUMMARY_FILE)
    return summary


def _cuda_count() -> int:
    import torch  # torch-heavy: only when placing seeds on devices

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def result_environment(cfg: UpsConfig) -> dict[str, Any]:
    """What besides the config decides a seed's exact bits: versions, processor, threads."""
    env = {**environment_fingerprint(cfg.device), "threads": cfg.threads}
    return {k: env.get(k) for k in ENV_KEYS}
