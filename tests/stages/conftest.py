"""A smoke run that trained the FNO baseline alone, shared read-only by the stage tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import train_smoke


@pytest.fixture(scope="session")
def fno_run(smoke_cache, tmp_path_factory) -> Path:
    """The smoke config with ``stages=[fno]``: the baseline needs no other stage."""
    runs = tmp_path_factory.mktemp("fno_runs")
    overrides = [f"paths.data_cache={smoke_cache}", f"paths.runs={runs}", "stages=[fno]"]
    return train_smoke(runs / "fno", overrides)
