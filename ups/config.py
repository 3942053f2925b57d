"""Load, override, validate, serialise and hash the typed config.

YAML files are merged onto the dataclass schema in :mod:`ups.schema` with OmegaConf, so an
unknown key or a wrongly typed value is an error naming the key; range checks run after.
A file may start with ``include: other.yaml`` (relative to itself) to build on another file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ups.checks import InvalidValue
from ups.schema import (
    EVAL_SECTIONS,
    STAGE_INPUTS,
    STAGE_RUN_KEYS,
    UNHASHED_SECTIONS,
    UpsConfig,
)

INCLUDE_KEY = "include"


class ConfigError(ValueError):
    """A config file or override is malformed; the message names the key and its source."""


def load_config(
    path: str | Path, overrides: Sequence[str] = (), *, run_here: bool = False
) -> UpsConfig:
    """Resolve ``path`` (plus ``key.sub=value`` overrides) into a validated :class:`UpsConfig`.

    ``run_here``: the caller is about to compute on ``cfg.device`` in this process, so a CUDA
    device this machine lacks is refused now, before a run folder exists. Leave it False where
    a config is only read (a run's config.yaml for analysis, possibly from another machine).
    """
    path = Path(path)
    merged = OmegaConf.structured(UpsConfig)
    for source, layer in _file_layers(path, seen=()):
        merged = _merge(merged, layer, source)
    if overrides:
        merged = _merge(merged, _dotlist(overrides), "command-line overrides")
    cfg = OmegaConf.to_object(merged)
    source = str(path) + (f" with overrides {list(overrides)}" if overrides else "")
    _validate_tree(cfg, prefix="", source=source)
    if run_here:
        _require_device(cfg.device, source)
    return cfg


def load_typed(schema: type, path: str | Path, verbatim: Sequence[str] = ()) -> Any:
    """A YAML file (no includes, no overrides) read onto another dataclass ``schema`` (e.g. a
    sweep spec) with the same key-naming errors and ``validate`` checks as a config. Top-level
    ``verbatim`` keys hold lists of strings kept as written (no ``${...}`` interpolation)."""
    ((source, layer),) = _file_layers_plain(Path(path))
    kept = {}
    for key in verbatim:
        if key in layer:
            kept[key] = OmegaConf.to_container(layer, resolve=False)[key]
            if not isinstance(kept[key], list) or not all(isinstance(v, str) for v in kept[key]):
                raise ConfigError(f"{source}: key '{key}' must be a list of strings")
            del layer[key]
    merged = _merge(OmegaConf.structured(schema), layer, source)
    obj = dataclasses.replace(OmegaConf.to_object(merged), **kept)
    _validate_tree(obj, prefix="", source=source)
    return obj


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> UpsConfig:
    """Build a validated config from a nested dict (e.g. read back from a run record)."""
    merged = _merge(OmegaConf.structured(UpsConfig), OmegaConf.create(data), source)
    cfg = OmegaConf.to_object(merged)
    _validate_tree(cfg, prefix="", source=source)
    return cfg


def to_dict(cfg: UpsConfig) -> dict[str, Any]:
    """The resolved config as a plain nested dict."""
    return dataclasses.asdict(cfg)


def to_yaml(cfg: UpsConfig) -> str:
    """The resolved config as nested YAML; :func:`load_config` reads it back to an equal config."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def config_hash(cfg: UpsConfig) -> str:
    """Stable sha256 of everything that can change a number (all but paths and tracking)."""
    return _sha256({k: v for k, v in to_dict(cfg).items() if k not in UNHASHED_SECTIONS})


def training_hash(cfg: UpsConfig) -> str:
    """sha256 of what training reads: the config hash less evaluation settings."""
    return _sha256(stage_keys(cfg, "*"))


def stage_keys(cfg: UpsConfig, stage: str) -> dict[str, Any]:
    """The part of the config that ``stage``'s weights depend on (see ``STAGE_INPUTS``); for a
    stage not listed there, conservatively everything training reads."""
    everything = {k: v for k, v in to_dict(cfg).items() if k not in UNHASHED_SECTIONS}
    if stage not in STAGE_INPUTS:
        return {k: v for k, v in everything.items() if k not in EVAL_SECTIONS}
    return {k: v for k, v in everything.items() if k in STAGE_RUN_KEYS + STAGE_INPUTS[stage]}


def stage_hash(cfg: UpsConfig, stage: str) -> str:
    """sha256 of :func:`stage_keys`: equal hashes, interchangeable checkpoints of ``stage``."""
    return _sha256(stage_keys(cfg, stage))


def _sha256(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def config_diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts, as ``key: old -> new``."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def evaluation_overrides(old: UpsConfig, new: UpsConfig) -> list[str]:
    """``key=value`` overrides that turn ``old``'s evaluation sections (``EVAL_SECTIONS``) into
    ``new``'s: how a run trained under ``old`` is evaluated as ``new`` asks."""
    before, after = to_dict(old), to_dict(new)
    return [
        o
        for section in EVAL_SECTIONS
        for o in _leaf_overrides(before[section], after[section], f"{section}.")
    ]


def _leaf_overrides(old: dict[str, Any], new: dict[str, Any], prefix: str) -> list[str]:
    out = []
    for key, value in sorted(new.items()):
        if isinstance(value, dict):
            out += _leaf_overrides(old.get(key) or {}, value, f"{prefix}{key}.")
        elif key not in old or old[key] != value:
            out.append(f"{prefix}{key}={json.dumps(value)}")  # JSON scalars and lists are YAML
    return out


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the same object gives the same bytes everywhere."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _file_layers(path: Path, seen: tuple[Path, ...]) -> list[tuple[str, DictConfig]]:
    """The YAML layers of ``path``, included bases first."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    resolved = path.resolve()
    if resolved in seen:
        raise ConfigError(f"{path}: include cycle through {[str(p) for p in seen]}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if data is None or data == {}:
        # Else it would run every schema default, at full size, as if that had been asked for.
        raise ConfigError(
            f"{path}: the file is empty (no keys set); write the keys to set, or start from a "
            f"base with `{INCLUDE_KEY}: <file>` (e.g. configs/burgers_golden.yaml)"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    layers: list[tuple[str, DictConfig]] = []
    include = data.pop(INCLUDE_KEY, None)
    if include is not None:
        if not isinstance(include, str):
            raise ConfigError(f"{path}: '{INCLUDE_KEY}' must be a file name, got {include!r}")
        layers += _file_layers(path.parent / include, seen + (resolved,))
    layers.append((str(path), OmegaConf.create(data)))
    return layers


def _file_layers_plain(path: Path) -> list[tuple[str, DictConfig]]:
    layers = _file_layers(path, seen=())
    if len(layers) != 1:
        raise ConfigError(f"{path}: '{INCLUDE_KEY}' is not allowed here")
    return layers


def _dotlist(overrides: Sequence[str]) -> DictConfig:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as err:
        raise ConfigError(f"command-line overrides: {err}") from err


def _merge(base: DictConfig, layer: DictConfig, source: str) -> DictConfig:
    try:
        return OmegaConf.merge(base, layer)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        detail = str(err).splitlines()[0]
        raise ConfigError(f"{source}: key '{key}': {detail}") from err


def _require_device(device: str, source: str) -> None:
    """Refuse a ``cuda[:N]`` device this machine does not have, naming the key and the way out."""
    if device == "cpu":
        return
    import torch  # only for a CUDA config that is about to run: reading configs needs no torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise ConfigError(
            f"{source}: key 'device' is {device!r}, but this machine has no CUDA device; "
            "set device: cpu (or the override device=cpu)"
        )
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        raise ConfigError(
            f"{source}: key 'device' is {device!r}, but this machine has {count} CUDA "
            f"device(s), cuda:0 to cuda:{count - 1}; set one of those, or device: cpu"
        )


def _validate_tree(node: Any, prefix: str, source: str) -> None:
    """Run every section's ``validate`` depth-first, naming the dotted key on failure."""
    for f in dataclasses.fields(node):
        child = getattr(node, f.name)
        if dataclasses.is_dataclass(child):
            _validate_tree(child, f"{prefix}{f.name}.", source)
    if hasattr(node, "validate"):
        try:
            node.validate()
        except InvalidValue as err:
            raise ConfigError(f"{source}: key '{prefix}{err.field}' {err.message}") from err
