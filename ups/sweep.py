"""``ups sweep``: hyperparameter sweeps from one W&B sweep spec, on W&B or locally.

With ``--local`` the spec's ``parameters`` (ups config keys) are drawn here, seeded: ``grid``
walks their product in spec order (truncated to N trials), ``random`` draws N trials from
``numpy_rng(seed, "sweep")``. Stages whose weights no swept key touches (equal
:func:`ups.config.stage_hash` across the trials, e.g. autoencoder and operator for a diffusion
sweep) are trained once in ``<out>/shared``; each trial is a full run folder
``<out>/trial<NNN>`` that starts from copies of those checkpoints, history and metrics and
trains only the remaining stages up to the objective's stage. Trials are scored by the spec's
``metric`` (``<stage>/best_val_<key>``, the name the W&B summary carries too) and ranked in
``<out>/sweep.md`` and ``sweep.json``. An interrupted local sweep resumes when run again.

Without ``--local`` the spec goes to W&B as is (``wandb.sweep`` + ``wandb.agent``); its
``command`` runs ``ups train`` with the trial's ``key=value`` overrides.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from tqdm.auto import tqdm

from ups import atomic
from ups.config import ConfigError, load_config, load_typed, stage_hash
from ups.records import RunRecord
from ups.repro import numpy_rng
from ups.schema import STAGES, SweepParameter, SweepSpec, UpsConfig
from ups.tracking import best_val_summary

SHARED, RESULTS = "shared", "sweep"


class SweepError(RuntimeError):
    """A sweep cannot run as asked (e.g. W&B unavailable, a method that needs W&B)."""


def load_spec(path: str | Path) -> SweepSpec:
    """The typed sweep spec of ``path``; unknown keys and bad values name the key and file."""
    return load_typed(SweepSpec, path, verbatim=("command",))  # W&B's ${env}, ${args...}


def draw_trials(spec: SweepSpec, n: int, seed: int) -> list[dict[str, Any]]:
    """N trials of ``{config key: value}``: the grid's first N points (spec order) or N seeded
    random draws; the same spec, N and seed always give the same trials."""
    if n < 1:
        raise SweepError(f"--trials must be >= 1, got {n}")
    names = list(spec.parameters)
    if spec.method == "grid":
        axes = [_grid_axis(name, spec.parameters[name]) for name in names]
        return [
            dict(zip(names, p, strict=True)) for p in itertools.islice(itertools.product(*axes), n)
        ]
    if spec.method != "random":
        raise SweepError(
            f"method '{spec.method}' needs W&B's controller; locally use grid or random"
        )
    rng = numpy_rng(seed, "sweep")
    return [{name: _draw(spec.parameters[name], rng) for name in names} for _ in range(n)]


def _grid_axis(name: str, param: SweepParameter) -> list[Any]:
    if param.distribution is not None:
        raise SweepError(f"parameters.{name}: a grid needs values or value, not a distribution")
    return list(param.values) if param.values is not None else [param.value]


def _draw(param: SweepParameter, rng) -> Any:
    if param.values is not None:
        return param.values[int(rng.integers(len(param.values)))]
    if param.value is not None:
        return param.value
    lo, hi = float(param.min), float(param.max)
    if param.distribution == "int_uniform":
        return int(rng.integers(int(lo), int(hi) + 1))
    if param.distribution == "log_uniform_values":
        return float(lo * (hi / lo) ** rng.random())
    return float(lo + (hi - lo) * rng.random())


def overrides(trial: dict[str, Any]) -> list[str]:
    """``key=value`` overrides of one trial, as W&B's ``${args_no_hyphens}`` passes them."""
    return [
        f"{key}={value!r}" if isinstance(value, float) else f"{key}={value}"
        for key, value in trial.items()
    ]


def objective_stage(spec: SweepSpec) -> str:
    """The stage whose selected val metric is the objective: ``<stage>/best_val_<key>``."""
    stage, _, key = spec.metric.name.partition("/")
    if stage not in STAGES or not key.startswith("best_val_"):
        raise SweepError(
            f"metric.name '{spec.metric.name}': a local sweep reads '<stage>/best_val_<key>' "
            "(e.g. diffusion/best_val_score), a stage's selected validation metric"
        )
    return stage


def run_local(
    spec_path: str | Path,
    base_config: str | Path,
    trials: int,
    out: str | Path,
    seed: int = 0,
    base_overrides: Sequence[str] = (),
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train and score N trials of the spec on ``base_config``; returns them ranked (best first)
    and writes ``<out>/sweep.md`` and ``<out>/sweep.json``."""
    from ups.pipeline import train  # the stages and models: imported only to run trials

    spec = load_spec(spec_path)
    drawn = draw_trials(spec, trials, seed)
    stage = objective_stage(spec)
    configs = [_trial_config(base_config, base_overrides, t, stage) for t in drawn]
    shared = _shared_stages(configs)
    out = Path(out)
    if shared:
        cfg = dataclasses.replace(configs[0], stages=shared)
        _train_run(train, cfg, out / SHARED, shared, progress)
    rows = []
    for i, (trial, cfg) in enumerate(
        tqdm(list(zip(drawn, configs, strict=True)), desc="sweep", disable=not progress)
    ):
        run_dir = out / f"trial{i:03d}"
        if not (run_dir / "run.json").is_file():
            _start_from_shared(cfg, run_dir, out / SHARED, shared)
        _train_run(train, cfg, run_dir, [s for s in cfg.stages if s not in shared], progress)
        metrics = best_val_summary(json.loads((run_dir / "metrics.json").read_text()))
        rows.append(
            {"trial": i, "run": str(run_dir), "params": trial, **_scores(metrics, spec, stage)}
        )
    ranked = rank(rows, spec.metric.goal)
    _write_results(out, spec, spec_path, base_config, seed, ranked)
    return ranked


def _trial_config(base: str | Path, base_overrides, trial, stage: str) -> UpsConfig:
    cfg = load_config(base, [*base_overrides, *overrides(trial)], run_here=True)
    if stage not in cfg.stages:
        raise ConfigError(
            f"{base}: the sweep's objective stage '{stage}' is not in stages {cfg.stages}"
        )
    upto = [s for s in STAGES if s in cfg.stages][
        : [s for s in STAGES if s in cfg.stages].index(stage) + 1
    ]
    return dataclasses.replace(cfg, stages=upto)


def _shared_stages(configs: list[UpsConfig]) -> list[str]:
    """The leading stages every trial trains identically (one stage hash across trials)."""
    shared = []
    for stage in configs[0].stages:
        if len({stage_hash(c, stage) for c in configs}) > 1:
            break
        shared.append(stage)
    return shared


def _train_run(train, cfg: UpsConfig, run_dir: Path, stages: list[str], progress: bool) -> None:
    """Train ``stages`` of ``cfg`` into ``run_dir``, creating or resuming it; a stage with
    final metrics is done (a re-run sweep keeps its numbers, wall time included)."""
    for stage in stages:
        done = run_dir / "metrics.json"
        if done.is_file() and stage in json.loads(done.read_text()):
            continue
        resume = (run_dir / "run.json").is_file()
        train(cfg, run_dir, stage=stage, resume=resume, progress=progress)


def _start_from_shared(cfg: UpsConfig, run_dir: Path, shared_dir: Path, shared: list[str]) -> None:
    """A new trial run folder holding the shared stages' checkpoints, history and metrics (the
    bytes an own training of them would have written: they train deterministically)."""
    record = RunRecord.create(cfg, run_dir)
    record.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    for stage in shared:
        for name in (stage, f"{stage}.last"):
            shutil.copy2(shared_dir / "checkpoints" / f"{name}.pt", record.checkpoint_path(name))
    if shared:
        shutil.copy2(shared_dir / "history.jsonl", run_dir / "history.jsonl")
        metrics = json.loads((shared_dir / "metrics.json").read_text())
        record.update_metrics({s: metrics[s] for s in shared})


def _scores(metrics: dict[str, float], spec: SweepSpec, stage: str) -> dict[str, float]:
    """The objective and, beside it, the val nRMSE and conservation gap it combines."""
    if spec.metric.name not in metrics:
        raise SweepError(
            f"metric.name '{spec.metric.name}' is not among the run's {sorted(metrics)}"
        )
    extra = {k: metrics.get(f"{stage}/best_val_{k}") for k in ("rollout_nrmse", "conservation_gap")}
    return {"objective": metrics[spec.metric.name], **extra}


def rank(rows: list[dict[str, Any]], goal: str) -> list[dict[str, Any]]:
    """Best first by ``objective`` (ties: earlier trial first), with a 1-based ``rank``."""
    sign = 1 if goal == "minimize" else -1
    ordered = sorted(rows, key=lambda r: (sign * r["objective"], r["trial"]))
    return [{"rank": i + 1, **r} for i, r in enumerate(ordered)]


def markdown_table(ranked: list[dict[str, Any]], metric: str, goal: str) -> str:
    """The ranked trials as Markdown: objective, val nRMSE, val gap and every swept value."""
    params = list(ranked[0]["params"]) if ranked else []
    head = ["rank", "trial", f"{metric} ({goal})", "val nRMSE", "val gap %", *params]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in ranked:
        cells = [r["rank"], r["trial"], _num(r["objective"]), _num(r["rollout_nrmse"])]
        cells += [_num(r["conservation_gap"]), *(_num(r["params"][p]) for p in params)]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _num(value: Any) -> str:
    if isinstance(value, float):
        return format(value, ".4g")
    return "n/a" if value is None else str(value)


def _write_results(out: Path, spec: SweepSpec, spec_path, base_config, seed, ranked) -> None:
    info = {
        "spec": str(spec_path),
        "base_config": str(base_config),
        "method": spec.method,
        "seed": seed,
        "metric": dataclasses.asdict(spec.metric),
        "ranked": ranked,
    }
    atomic.write_json(out / f"{RESULTS}.json", info)
    name = spec.name or Path(spec_path).stem
    title = f"# Sweep {name}: {len(ranked)} trials ({spec.method}, seed {seed})\n\n"
    atomic.write_text(
        out / f"{RESULTS}.md", title + markdown_table(ranked, spec.metric.name, spec.metric.goal)
    )


def run_wandb(spec_path: str | Path, trials: int, project: str, entity: str | None) -> str:
    """Create the W&B sweep from the spec as written and run an agent for N trials; its id."""
    spec_dict = yaml.safe_load(Path(spec_path).read_text())
    load_spec(spec_path)  # the same checks as --local before anything reaches W&B
    try:
        import wandb  # optional service: imported only for W&B sweeps
    except ImportError as err:
        raise SweepError("wandb is not installed: pip install wandb, or use --local") from err
    if not wandb.login(prompt=False):  # False without credentials; never prompts
        raise SweepError(
            "not logged in to W&B (wandb login, or WANDB_API_KEY); use --local to sweep without W&B"
        )
    sweep_id = wandb.sweep(sweep=spec_dict, project=project, entity=entity)
    wandb.agent(sweep_id, project=project, entity=entity, count=trials)
    return sweep_id
