"""Shared fixtures: reset global torch state per test, hypothesis profiles, the smoke config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]
SMOKE_CONFIG = REPO / "configs" / "burgers_smoke.yaml"
GOLDEN_CONFIG = REPO / "configs" / "burgers_golden.yaml"

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(config, items):
    """GPU tests skip cleanly, with the reason, where CUDA is absent."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: torch.cuda.is_available() is False")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _reset_torch_state():
    """Tests must not leak deterministic mode or thread counts into each other."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


@pytest.fixture(autouse=True)
def _isolated_wandb(tmp_path, monkeypatch):
    """Keep wandb's settings and caches inside the test's temp dir; never reach the network."""
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


@pytest.fixture(scope="session")
def smoke_cache(tmp_path_factory) -> Path:
    """A data cache holding the smoke dataset, built once per test session."""
    from ups.config import load_config
    from ups.data.dataset import get_dataset

    cache = tmp_path_factory.mktemp("data_cache")
    get_dataset(load_config(SMOKE_CONFIG).data, cache, progress=False)
    return cache


@pytest.fixture
def smoke_overrides(smoke_cache, tmp_path) -> list[str]:
    """Overrides pointing the smoke config at the shared cache and a private runs folder."""
    return [f"paths.data_cache={smoke_cache}", f"paths.runs={tmp_path / 'runs'}"]


def train_smoke(run_dir: Path, overrides: list[str], **kwargs) -> Path:
    """Train the smoke pipeline into ``run_dir`` (W&B off unless overridden)."""
    from ups.config import load_config
    from ups.pipeline import train

    cfg = load_config(SMOKE_CONFIG, ["tracking.wandb.mode=disabled", *overrides])
    return train(cfg, run_dir, progress=False, **kwargs)


class Killed(RuntimeError):
    """Stands in for SIGKILL: raised instead of writing a checkpoint."""


def train_killed(
    run_dir: Path, overrides: list[str], monkeypatch, nth: int, prefix: str = ""
) -> None:
    """Train the smoke pipeline into ``run_dir``, killed at the ``nth`` checkpoint write whose
    file name starts with ``prefix`` (every write by default)."""
    from ups.train import checkpoint

    save, calls = checkpoint.save, {"n": 0}

    def dying_save(path, *args, **kwargs):
        calls["n"] += Path(path).name.startswith(prefix)
        if calls["n"] == nth:
            raise Killed(f"killed at checkpoint write {nth} ({prefix or 'any'})")
        return save(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "save", dying_save)
    with pytest.raises(Killed):
        train_smoke(run_dir, overrides)
    monkeypatch.setattr(checkpoint, "save", save)


def train_killed_then_resumed(
    run_dir: Path, overrides: list[str], monkeypatch, nth: int, prefix: str = ""
) -> Path:
    """:func:`train_killed`, then resume the run to the end."""
    import json

    train_killed(run_dir, overrides, monkeypatch, nth, prefix)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"
    return train_smoke(run_dir, overrides, resume=True)


@pytest.fixture(scope="session")
def smoke_run(smoke_cache, tmp_path_factory) -> Path:
    """One fully trained smoke run (all four stages), shared read-only by the tests."""
    runs = tmp_path_factory.mktemp("runs")
    return train_smoke(runs / "shared", [f"paths.data_cache={smoke_cache}", f"paths.runs={runs}"])
