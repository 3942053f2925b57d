import subprocess
import sys

import pytest

from tests.conftest import SMOKE_CONFIG
from ups.cli import main
from ups.config import load_config
from ups.data.dataset import DATA_FILE, dataset_dir


def test_data_describes_and_verifies_a_cached_dataset(smoke_overrides, capsys):
    assert main(["data", str(SMOKE_CONFIG), *smoke_overrides]) == 0
    out = capsys.readouterr().out
    assert "checksums verified" in out
    assert "| train | 32 trajectories" in out and "| test | 8 trajectories" in out
    assert main(["data", str(SMOKE_CONFIG), *smoke_overrides, "--verify"]) == 0


def test_data_builds_rebuilds_and_reports_corruption(tmp_path, capsys):
    overrides = [f"paths.data_cache={tmp_path}"]
    assert main(["data", str(SMOKE_CONFIG), *overrides, "--verify"]) == 2
    assert "no dataset" in capsys.readouterr().err
    assert main(["data", str(SMOKE_CONFIG), *overrides]) == 0
    data_file = dataset_dir(load_config(SMOKE_CONFIG).data, tmp_path) / DATA_FILE
    data_file.write_bytes(data_file.read_bytes()[:-10])
    assert main(["data", str(SMOKE_CONFIG), *overrides]) == 2
    err = capsys.readouterr().err
    assert str(data_file) in err and "--rebuild" in err
    assert main(["data", str(SMOKE_CONFIG), *overrides, "--rebuild"]) == 0


@pytest.mark.parametrize(
    ("override", "message"),
    [("data.nuu=1", "data.nuu"), ("data.points=abc", "data.points"), ("data.nu=-1", "data.nu")],
)
def test_bad_overrides_exit_2_naming_the_key(override, message, capsys):
    assert main(["data", str(SMOKE_CONFIG), override]) == 2
    assert message in capsys.readouterr().err


def test_console_script_entry_point_runs(smoke_overrides):
    done = subprocess.run(
        [sys.executable, "-m", "ups", "data", str(SMOKE_CONFIG), *smoke_overrides, "--verify"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "checksums verified" in done.stdout
