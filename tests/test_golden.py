"""The golden gate as tests: 3 seeds of the golden config held to golden/<name>.json.

Selected with ``pytest -m golden`` (``nox -s golden``); the default run leaves them out.
"""

import pytest

from tests.conftest import GOLDEN_CONFIG, REPO
from ups.cli import main

pytestmark = [pytest.mark.golden, pytest.mark.slow]


def _gate(config, tmp_path, jobs: int) -> int:
    return main(
        [
            "gate",
            str(config),
            "-j",
            str(jobs),
            f"paths.data_cache={REPO / 'data_cache'}",
            "tracking.wandb.mode=disabled",
            "--golden-dir",
            str(REPO / "golden"),
            "--out",
            str(tmp_path / "seeds"),
            "--markdown",
            str(tmp_path / "gate.md"),
        ]
    )


def test_cpu_golden_gate_passes(tmp_path):
    # Three seeds side by side, one thread each: how the baseline was made and how CI runs it.
    assert _gate(GOLDEN_CONFIG, tmp_path, jobs=3) == 0, (tmp_path / "gate.md").read_text()


@pytest.mark.gpu
def test_gpu_golden_gate_passes(tmp_path):
    assert _gate(REPO / "configs" / "burgers_golden_gpu.yaml", tmp_path, jobs=1) == 0
