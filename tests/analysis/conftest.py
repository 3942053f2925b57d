"""Shared runs for the analysis tests: three smoke seeds (trained and evaluated once, mirrored
to offline W&B) and a run that crashed in the middle of its operator stage."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import SMOKE_CONFIG, train_smoke
from ups.wandb_offline import find_offline_runs, read_offline_run

SEEDS = (0, 1, 2)
CRASH_AT_EPOCH = 2  # the operator's validation raises here: epochs 0 and 1 are logged


def _offline_wandb(mp: pytest.MonkeyPatch, root: Path) -> None:
    """What the autouse ``_isolated_wandb`` does, for session fixtures (set up before it)."""
    for var, sub in (("CONFIG", "config"), ("CACHE", "cache"), ("DATA", "data")):
        mp.setenv(f"WANDB_{var}_DIR", str(root / f"wandb-{sub}"))
    mp.setenv("WANDB_SILENT", "true")
    mp.delenv("WANDB_API_KEY", raising=False)


def _wait_for_wandb(root: Path, runs: int, timeout: float = 60.0) -> None:
    """Wait until ``runs`` offline W&B files below ``root`` hold their exit record: in offline
    mode ``wandb.finish()`` may return before wandb-core has written the file."""
    deadline = time.monotonic() + timeout
    while True:
        files = find_offline_runs(root)
        done = [f for f in files if read_offline_run(f)["exit_code"] is not None]
        if len(done) >= runs:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(done)} of {runs} offline W&B runs written below {root}")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def smoke_seeds(smoke_cache, tmp_path_factory) -> Path:
    """``<dir>/seeds.json`` and ``<dir>/seed{0,1,2}``: full smoke runs, evaluated, each with
    its offline W&B runs (train and eval-test) in ``seed<N>/wandb``."""
    from ups.seeds import run_seeds

    out = tmp_path_factory.mktemp("seeds")
    overrides = [f"paths.data_cache={smoke_cache}", "tracking.wandb.mode=offline"]
    with pytest.MonkeyPatch.context() as mp:
        _offline_wandb(mp, out)
        run_seeds(SMOKE_CONFIG, list(SEEDS), out, overrides)
    _wait_for_wandb(out, runs=2 * len(SEEDS))  # train + eval-test per seed
    return out


@pytest.fixture(scope="session")
def crashed_run(smoke_cache, tmp_path_factory) -> Path:
    """A run whose operator stage raised at epoch :data:`CRASH_AT_EPOCH` (mirrored offline)."""
    from ups.stages.operator import OperatorStage

    root = tmp_path_factory.mktemp("crashed")
    validate = OperatorStage.validate
    calls = []

    def failing_validate(self, model):
        calls.append(1)
        if len(calls) > CRASH_AT_EPOCH:
            raise RuntimeError("simulated crash")
        return validate(self, model)

    with pytest.MonkeyPatch.context() as mp:
        _offline_wandb(mp, root)
        mp.setattr(OperatorStage, "validate", failing_validate)
        with pytest.raises(RuntimeError, match="simulated crash"):
            train_smoke(
                root / "run",
                [f"paths.data_cache={smoke_cache}", "tracking.wandb.mode=offline"],
            )
    _wait_for_wandb(root / "run", runs=1)
    return root / "run"
