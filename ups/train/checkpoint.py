"""Self-describing checkpoints: weights, optimiser, schedule, EMA, every RNG state, position.

Checkpoints hold only tensors, plain containers, numbers and strings, so they load with
``torch.load(weights_only=True)``. Each carries the config hash of the run that wrote it and
is refused by a run whose config would train that stage differently, naming what differs: the
check compares :func:`ups.config.stage_hash`, the hash of the keys the stage depends on, so
evaluation settings or another stage's section may change without invalidating its weights.
A reader names the stage it expects, so a checkpoint copied in under another stage's name is
refused; one that is truncated, unreadable or holds anything else is refused by name, never
unpickled.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ups import atomic
from ups.config import config_diff, config_hash, stage_hash, stage_keys, to_dict
from ups.schema import UpsConfig


class CheckpointMismatchError(RuntimeError):
    """A checkpoint written under another config, or for another stage."""


class CheckpointUnreadableError(CheckpointMismatchError):
    """A checkpoint file that is truncated, corrupt, or holds objects beyond plain data."""


def save(path: str | Path, payload: dict[str, Any], cfg: UpsConfig) -> None:
    """Atomically write ``payload`` (which names its ``stage``) plus the config (nested dict),
    its hash and the stage hash."""
    stamp = {
        "config": to_dict(cfg),
        "config_hash": config_hash(cfg),
        "stage_hash": stage_hash(cfg, payload["stage"]),
    }
    atomic.torch_save({**payload, **stamp}, path)


def load(path: str | Path, cfg: UpsConfig, expect: str | None = None) -> dict[str, Any]:
    """Load a checkpoint whose stage ``cfg`` trains the same way (and, if given, whose stage
    is ``expect``); refuse any other."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} is missing")
    payload = _read(path)
    stage = payload.get("stage")
    if not isinstance(stage, str):
        raise CheckpointMismatchError(f"{path} names no stage: not a ups stage checkpoint")
    if expect is not None and stage != expect:
        raise CheckpointMismatchError(
            f"{path} is a checkpoint of the '{stage}' stage, not of '{expect}': it was copied "
            f"or renamed; put back the run's own '{expect}' checkpoint, or delete it and "
            f"retrain that stage (ups train --resume RUN --stage {expect})"
        )
    if payload.get("stage_hash") != stage_hash(cfg, stage):
        raise CheckpointMismatchError(
            f"{path} ({stage} stage) was trained under another config (stage hash "
            f"{str(payload.get('stage_hash'))[:12]} vs {stage_hash(cfg, stage)[:12]}); "
            f"{_differences(payload.get('config', {}), cfg, stage)}"
        )
    return payload


def _differences(written: Any, cfg: UpsConfig, stage: str) -> str:
    """What differs between the config a checkpoint was written under (its raw dict, so a key
    the schema gained since shows as ``None -> default``) and ``cfg``, in ``stage``'s sections."""
    now = stage_keys(cfg, stage)
    if not isinstance(written, dict):
        return "its stored config is unreadable"
    diff = config_diff({k: v for k, v in written.items() if k in now}, now)
    if diff:
        return f"differing keys: {diff}"
    return (
        "no key differs: the config hash itself changed with the ups version; retrain the stage "
        f"(ups train --resume RUN --stage {stage}) or use the commit that wrote it (run.json)"
    )


def _read(path: Path) -> dict[str, Any]:
    """``torch.load`` with plain data only; every way it can fail becomes a named error."""
    retrain = (
        f"delete {path} (and its .last checkpoint) and retrain that stage with "
        "`ups train --resume RUN`"
    )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message advises turning the safety check off: never pass that on.
        raise CheckpointUnreadableError(
            f"{path} was refused: it holds objects beyond tensors and plain containers, which "
            f"ups never writes and never unpickles; {retrain}"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as err:
        raise CheckpointUnreadableError(
            f"{path} is truncated or not a checkpoint ({type(err).__name__}); {retrain}"
        ) from None
    if not isinstance(payload, dict):
        raise CheckpointUnreadableError(f"{path} holds no checkpoint dict; {retrain}")
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
