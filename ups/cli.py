"""The ``ups`` command line: thin wrappers over importable functions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ups.config import ConfigError, load_config
from ups.data.dataset import DatasetError, dataset_dir, get_dataset, load_dataset
from ups.data.describe import describe_dataset


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, DatasetError) as err:
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
