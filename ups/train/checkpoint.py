"""Self-describing checkpoints: weights, optimiser, schedule, EMA, every RNG state, position.

Checkpoints hold only tensors, plain containers, numbers and strings, so they load with
``torch.load(weights_only=True)``. Each carries the config hash of the run that wrote it and
is refused by a run with another hash, naming what differs.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ups import atomic
from ups.config import config_diff, config_from_dict, config_hash, to_dict
from ups.schema import UpsConfig


class CheckpointMismatchError(RuntimeError):
    """A checkpoint written under another config."""


def save(path: str | Path, payload: dict[str, Any], cfg: UpsConfig) -> None:
    """Atomically write ``payload`` plus the config (nested dict) and its hash."""
    atomic.torch_save({**payload, "config": to_dict(cfg), "config_hash": config_hash(cfg)}, path)


def load(path: str | Path, cfg: UpsConfig) -> dict[str, Any]:
    """Load a checkpoint written under ``cfg``; refuse one written under another config."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} is missing")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("config_hash") != config_hash(cfg):
        raise CheckpointMismatchError(
            f"{path} was written under another config (hash "
            f"{str(payload.get('config_hash'))[:12]} vs {config_hash(cfg)[:12]}); differing keys: "
            f"{config_diff(payload.get('config', {}), to_dict(cfg))}"
        )
    return payload


def rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """Every random state a resumed run needs to continue bit for bit."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2])},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
        "generators": {name: g.get_state() for name, g in generators.items()},
    }


def restore_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    keys = state["numpy"]["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy"]["pos"], 0, 0.0))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    for name, gen in generators.items():
        gen.set_state(state["generators"][name])


def config_of(payload: dict[str, Any]) -> UpsConfig:
    """The config a checkpoint was written under."""
    return config_from_dict(payload["config"], source="checkpoint")
