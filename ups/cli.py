"""The ``ups`` command line: thin wrappers over importable functions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ups.config import ConfigError, load_config
from ups.data.dataset import DatasetError, dataset_dir, get_dataset, load_dataset
from ups.data.describe import describe_dataset
from ups.records import RunMismatchError, RunNotFoundError
from ups.schema import STAGES
from ups.stages.context import MissingUpstreamError
from ups.train.checkpoint import CheckpointMismatchError
from ups.train.loop import NonFiniteLossError

USER_ERRORS = (
    ConfigError,
    DatasetError,
    RunMismatchError,
    RunNotFoundError,
    MissingUpstreamError,
    CheckpointMismatchError,
    NonFiniteLossError,
    FileExistsError,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may also follow options (`ups train CFG --run-dir D seed=1`).
    stray = [item for item in extra if item.startswith("-") or "=" not in item]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    args.overrides = [*args.overrides, *extra]
    try:
        return args.handler(args)
    except USER_ERRORS as err:
        print(f"ups {args.command}: error: {err}", file=sys.stderr)
        return 2


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
    return parser


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
    from ups.pipeline import train  # torch-heavy: imported only for this command

    if args.resume:
        if args.config or args.overrides or args.run_dir:
            raise ConfigError(
                "--resume RUN takes its config from RUN/config.yaml; pass nothing else"
            )
        cfg, run_dir = load_config(Path(args.resume) / "config.yaml"), args.resume
    elif args.config:
        cfg, run_dir = load_config(args.config, args.overrides), args.run_dir
    else:
        raise ConfigError("give a CONFIG to start a run, or --resume RUN to continue one")
    path = train(
        cfg, run_dir, stage=args.stage, resume=bool(args.resume), progress=not args.no_progress
    )
    print(f"run {path}: finished; metrics in {path / 'metrics.json'}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from ups.eval.evaluate import evaluate  # torch-heavy: imported only for this command

    metrics = evaluate(args.run, args.overrides, progress=not args.no_progress)
    split = metrics["split"]
    print(Path(args.run, "eval", split, "report.md").read_text())
    print(f"run {args.run}: eval on {split} written to {Path(args.run, 'eval', split)}")
    return 0
