"""The ``ups`` command line: thin wrappers over importable functions."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from ups.analysis.view import AnalysisInputError
from ups.atomic import ArtifactWriteError
from ups.config import ConfigError, load_config
from ups.data.dataset import DatasetError, dataset_dir, get_dataset, load_dataset
from ups.data.describe import describe_dataset
from ups.distributed import DistributedConfigError, world_from_env
from ups.gate import BaselineRejectedError
from ups.golden import GoldenFileError, GoldenMissingError
from ups.records import RunMismatchError, RunNotFoundError, RunRecordError, RunUnfinishedError
from ups.runlock import RunLockedError
from ups.schema import STAGES
from ups.session import RunInterruptedError
from ups.stages.context import MissingUpstreamError
from ups.summary import SummaryError
from ups.sweep import SweepError
from ups.train.checkpoint import CheckpointMismatchError
from ups.train.loop import NonFiniteLossError

USER_ERRORS = (
    ConfigError,
    DatasetError,
    RunMismatchError,
    RunNotFoundError,
    RunRecordError,
    RunUnfinishedError,
    RunLockedError,
    ArtifactWriteError,
    MissingUpstreamError,
    CheckpointMismatchError,
    NonFiniteLossError,
    FileExistsError,
    GoldenMissingError,
    GoldenFileError,
    SummaryError,
    BaselineRejectedError,
    AnalysisInputError,
    DistributedConfigError,
    SweepError,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may also follow options (`ups train CFG --run-dir D seed=1`).
    stray = [item for item in extra if item.startswith("-") or "=" not in item]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    args.overrides = [*args.overrides, *extra]
    # SIGTERM ends a command as Ctrl-C does: a training run is marked interrupted, not left
    # "running" forever.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return args.handler(args)
    except USER_ERRORS as err:
        print(f"ups {args.command}: error: {err}", file=sys.stderr)
        return 2
    except RunInterruptedError as err:
        print(f"ups {args.command}: {err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"ups {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ups", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="build (if needed), verify and describe a dataset")
    _add_config_args(data)
    data.add_argument("--rebuild", action="store_true", help="regenerate even if cached")
    data.add_argument(
        "--verify", action="store_true", help="only verify an existing cache; never build"
    )
    data.set_defaults(handler=_cmd_data)

    train = commands.add_parser(
        "train",
        help="train the configured stages into a run folder",
        description="Train CONFIG's stages into a new run, or continue one with --resume RUN.",
    )
    train.add_argument("config", nargs="?", help="YAML config (omit with --resume)")
    train.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. seed=1")
    train.add_argument("--run-dir", help="run folder (default <paths.runs>/<run id>)")
    train.add_argument("--stage", choices=STAGES, help="train only this stage")
    train.add_argument("--resume", metavar="RUN", help="continue the run in folder RUN")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.set_defaults(handler=_cmd_train)

    evaluate = commands.add_parser(
        "eval",
        help="evaluate a trained run: every rollout mode, metrics, report and plots",
        description="Roll out persistence, baselines, operator, corrector, projection, random "
        "choice, TTC and oracle on a split (eval.split, default test) of RUN's dataset; writes "
        "RUN/eval/<split>/ and merges the metrics into RUN/metrics.json.",
    )
    evaluate.add_argument("run", help="a trained run folder")
    evaluate.add_argument(
        "overrides", nargs="*", help="eval.* and ttc.* overrides, e.g. eval.split=val"
    )
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")
    evaluate.set_defaults(handler=_cmd_eval)

    seeds = commands.add_parser(
        "seeds", help="train and evaluate one run per seed; summarise mean, std and CV"
    )
    _add_config_args(seeds)
    _add_seed_args(seeds, default=None)
    seeds.set_defaults(handler=_cmd_seeds)

    gate = commands.add_parser(
        "gate",
        help="the golden regression gate: run the seeds, compare with golden/<name>.json",
        description="Run the golden seeds of CONFIG (or read --summary), check the thresholds "
        "and the baseline, print a Markdown verdict; exit 1 when a rule fails.",
    )
    _add_config_args(gate)
    _add_seed_args(gate, default=None)
    gate.add_argument("--golden-dir", default="golden", help="where baselines live")
    gate.add_argument("--summary", help="judge this seeds.json instead of running the seeds")
    gate.add_argument("--markdown", help="also write the verdict to this file")
    gate.add_argument(
        "--update", action="store_true", help="rewrite the baseline from this run (review it)"
    )
    gate.set_defaults(handler=_cmd_gate)

    sweep = commands.add_parser(
        "sweep",
        help="a hyperparameter sweep from a W&B sweep spec, on W&B or --local",
        description="Run N trials of SPEC (configs/sweeps/*.yaml): on W&B (wandb.sweep + agent), "
        "or with --local here, seeded (grid or random), reusing the stages no swept key touches; "
        "writes a ranked table (sweep.md, sweep.json) of the validation objective.",
    )
    sweep.add_argument("spec", help="W&B sweep spec, e.g. configs/sweeps/diffusion.yaml")
    sweep.add_argument("overrides", nargs="*", help="key.sub=value overrides of the base config")
    sweep.add_argument("--local", action="store_true", help="run the trials here, without W&B")
    sweep.add_argument("--trials", type=int, default=8, help="number of trials (default 8)")
    sweep.add_argument("--seed", type=int, default=0, help="seed of the random draws (--local)")
    sweep.add_argument("--base", default="configs/burgers_golden.yaml", help="base config")
    sweep.add_argument("--out", help="sweep folder (--local; default <paths.runs>/sweep-...)")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bars")
    sweep.set_defaults(handler=_cmd_sweep)

    analyze = commands.add_parser(
        "analyze",
        help="diagnose one run: per-stage training, validation, eval and flagged problems",
        description="Analyse RUN (a run folder, an offline W&B folder or .wandb file, or "
        "wandb:ENTITY/PROJECT/RUN_ID) as far as its records go; Markdown to stdout.",
    )
    analyze.add_argument("run", help="run folder, offline W&B run, or wandb:ENTITY/PROJECT/RUN_ID")
    _add_report_args(analyze, None, "eval split (default: test, else the first evaluated)")
    analyze.set_defaults(handler=_cmd_analyze, overrides=[])

    compare = commands.add_parser(
        "compare",
        help="compare runs: config diff, metric spread, loss variance, loss-metric correlations",
        description="Compare runs (folders, globs, seeds.json, offline W&B runs, wandb: paths).",
    )
    compare.add_argument("runs", nargs="+", help="runs, globs or a seeds.json (or its folder)")
    _add_report_args(compare, "test", "eval split (default: test)")
    compare.set_defaults(handler=_cmd_compare, overrides=[])
    return parser


def _add_report_args(parser: argparse.ArgumentParser, split: str | None, help_: str) -> None:
    parser.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    parser.add_argument(
        "--out", help="write the report to this file (.md/.json) or folder, PNG plots beside it"
    )
    parser.add_argument("--split", default=split, help=help_)


def _add_seed_args(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--seeds", type=int, nargs="+", default=default, help="seeds to run")
    parser.add_argument(
        "-j", "--jobs", type=int, help="seeds run at once (default 1, or one per --devices)"
    )
    parser.add_argument(
        "--devices",
        nargs="+",
        help="place seeds round-robin on these devices (cuda:0 cuda:1, or 0 1, or cpu); a "
        "missing GPU falls back to a CPU process",
    )
    parser.add_argument("--out", help="folder of the seed runs (default <paths.runs>/seeds-...)")


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config, e.g. configs/burgers_golden.yaml")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides")


def _cmd_data(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    cache = cfg.paths.data_cache
    if args.verify:
        dataset = load_dataset(cfg.data, cache)
    else:
        dataset = get_dataset(cfg.data, cache, rebuild=args.rebuild)
    print(f"dataset {dataset_dir(cfg.data, cache)}: checksums verified")
    print(describe_dataset(dataset))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from ups.pipeline import train

    if args.resume:
        if args.config or args.overrides or args.run_dir:
            raise ConfigError(
                "--resume RUN takes its config from RUN/config.yaml; pass nothing else"
            )
        cfg, run_dir = load_config(Path(args.resume) / "config.yaml", run_here=True), args.resume
    elif args.config:
        cfg, run_dir = load_config(args.config, args.overrides, run_here=True), args.run_dir
    else:
        raise ConfigError("give a CONFIG to start a run, or --resume RUN to continue one")
    path = train(
        cfg, run_dir, stage=args.stage, resume=bool(args.resume), progress=not args.no_progress
    )
    if world_from_env().is_main:  # under torchrun, one report
        print(f"run {path}: finished; metrics in {path / 'metrics.json'}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from ups.eval.evaluate import evaluate

    metrics = evaluate(args.run, args.overrides, progress=not args.no_progress)
    split = metrics["split"]
    print(Path(args.run, "eval", split, "report.md").read_text())
    print(f"run {args.run}: eval on {split} written to {Path(args.run, 'eval', split)}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from ups import sweep

    cfg = load_config(args.base, args.overrides)
    if not args.local:
        if args.overrides:
            raise ConfigError("a W&B sweep runs the spec's command as written; pass no overrides")
        wb = cfg.tracking.wandb
        sweep_id = sweep.run_wandb(args.spec, args.trials, wb.project, wb.entity)
        print(f"W&B sweep {sweep_id}: {args.trials} trials run by this agent")
        return 0
    out = Path(args.out or Path(cfg.paths.runs) / f"sweep-{Path(args.spec).stem}-s{args.seed}")
    sweep.run_local(
        args.spec,
        args.base,
        args.trials,
        out,
        seed=args.seed,
        base_overrides=args.overrides,
        progress=not args.no_progress,
    )
    print((out / "sweep.md").read_text(), end="")
    print(f"sweep table written to {out / 'sweep.md'} and {out / 'sweep.json'}")
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from ups.analysis.commands import analyze_command

    _refuse_overrides(args)
    print(analyze_command(args.run, args.out, args.json, args.split), end="")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from ups.analysis.commands import compare_command

    _refuse_overrides(args)
    print(compare_command(args.runs, args.out, args.json, args.split), end="")
    return 0


def _refuse_overrides(args: argparse.Namespace) -> None:
    if args.overrides:
        raise AnalysisInputError(f"takes no key=value overrides, got {args.overrides}")


def _seeds_out(args: argparse.Namespace, cfg) -> Path:
    from ups.config import config_hash
    from ups.seeds import default_out

    return Path(args.out) if args.out else default_out(cfg.paths.runs, cfg.name, config_hash(cfg))


def _jobs(args: argparse.Namespace) -> int:
    """``-j`` if given, else one process per device with ``--devices``, else 1."""
    if args.jobs is not None:
        return args.jobs
    return len(args.devices) if args.devices else 1


def _cmd_seeds(args: argparse.Namespace) -> int:
    from ups.gate import seeds_table
    from ups.seeds import run_seeds

    cfg = load_config(args.config, args.overrides)
    seeds = args.seeds or [0, 1, 2]
    out = _seeds_out(args, cfg)
    summary = run_seeds(args.config, seeds, out, args.overrides, _jobs(args), devices=args.devices)
    print(seeds_table(summary))
    print(f"seeds summary written to {out / 'seeds.json'}")
    return 0


def _cmd_gate(args: argparse.Namespace) -> int:
    from ups import gate

    verdict = gate.run(
        args.config,
        args.seeds,
        args.overrides,
        out=args.out,
        jobs=_jobs(args),
        devices=args.devices,
        golden_dir=args.golden_dir,
        summary=args.summary,
        update=args.update,
    )
    if args.update:
        print(f"baseline of this environment written from seeds {verdict.summary.seeds}")
    table = verdict.markdown()
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table)
    for c in verdict.failed:
        print(
            f"ups gate: {c.rule} rule failed: {c.metric} = {c.value:.4g}, limit {c.limit:.4g} "
            f"(over by {-c.margin:.3g})",
            file=sys.stderr,
        )
    return 1 if verdict.failed else 0
