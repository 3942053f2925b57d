"""The W&B mirror can fail, the run cannot: a failed online start falls back to offline, an
unwritable mirror folder turns the mirror off, and wandb writes nothing outside the run folder.
No test reaches the network: online starts are refused by a stand-in ``wandb.init``."""

import os
import tempfile

import pytest
import wandb

from tests.conftest import SMOKE_CONFIG
from ups.config import load_config
from ups.records import RunRecord, read_run
from ups.session import open_session
from ups.tracking import INIT_TIMEOUT_S, WandbMirror
from ups.wandb_offline import find_offline_runs, read_offline_run


@pytest.fixture
def init_calls(monkeypatch):
    """Every wandb.init call's mode and init_timeout; an online one fails like an unreachable
    server at its timeout, an offline one runs for real."""
    calls, real_init = [], wandb.init

    def init(**kwargs):
        calls.append((kwargs["mode"], kwargs["settings"].init_timeout))
        if kwargs["mode"] == "online":
            raise wandb.errors.CommError("Timed out while retrying: no such host")
        return real_init(**kwargs)

    monkeypatch.setattr(wandb, "init", init)
    return calls


def test_a_failed_online_start_falls_back_to_offline_and_the_run_finishes(
    smoke_overrides, init_calls, capsys
):
    cfg = load_config(SMOKE_CONFIG, smoke_overrides + ["tracking.wandb.mode=online"])
    with (
        pytest.warns(RuntimeWarning, match="W&B online start failed") as caught,
        open_session(cfg) as session,
    ):
        assert session.mirror.active and session.mirror.mode == "offline"
        session.log("data", 0, value=1.0)
    assert init_calls == [("online", INIT_TIMEOUT_S), ("offline", INIT_TIMEOUT_S)]
    (warning,) = [w for w in caught if "W&B" in str(w.message)]
    assert "CommError: Timed out" in str(warning.message)
    assert "the run continues with an offline mirror" in str(warning.message)
    assert "contacting W&B" in capsys.readouterr().out
    run = read_run(session.record.path)
    assert run.status == "finished" and run.history[0]["value"] == 1.0
    (offline,) = find_offline_runs(session.record.path)
    assert read_offline_run(offline)["history"][0]["data/value"] == 1.0


def test_offline_mode_contacts_no_one(smoke_overrides, init_calls, capsys):
    cfg = load_config(SMOKE_CONFIG, smoke_overrides)
    with open_session(cfg) as session:
        assert session.mirror.active
    assert init_calls == [("offline", INIT_TIMEOUT_S)]
    assert "contacting W&B" not in capsys.readouterr().out


def test_an_offline_start_that_fails_turns_the_mirror_off(smoke_overrides, monkeypatch):
    def init(**kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wandb, "init", init)
    cfg = load_config(SMOKE_CONFIG, smoke_overrides)
    with (
        pytest.warns(RuntimeWarning, match="W&B mirror disabled") as caught,
        open_session(cfg) as session,
    ):
        assert not session.mirror.active
        session.log("data", 0, value=2.0)
    assert "could not start wandb (OSError: [Errno 28] No space left" in str(caught[0].message)
    assert read_run(session.record.path).status == "finished"


def _refuse_writes_in(folder, monkeypatch):
    """Scratch files in ``folder`` fail as in a read-only folder (chmod does not stop root)."""
    real = tempfile.TemporaryFile

    def temporary_file(*args, dir=None, **kwargs):
        if dir is not None and os.path.samefile(dir, folder):
            raise PermissionError(13, "Permission denied", str(folder))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", temporary_file)


def test_an_unwritable_mirror_folder_turns_the_mirror_off(smoke_overrides, tmp_path, monkeypatch):
    monkeypatch.setattr(wandb, "init", lambda **kw: pytest.fail("wandb.init must not be called"))
    cfg = load_config(SMOKE_CONFIG, smoke_overrides)
    record = RunRecord.create(cfg, tmp_path / "run")
    (record.path / "wandb").mkdir()
    _refuse_writes_in(record.path / "wandb", monkeypatch)
    with pytest.warns(RuntimeWarning, match="W&B mirror disabled") as caught:
        mirror = WandbMirror(cfg, record)
    assert not mirror.active
    assert f"cannot write its folder {record.path / 'wandb'} (PermissionError" in str(
        caught[0].message
    )
    mirror.log({"a": 1.0})  # an off mirror takes the run's calls and does nothing
    mirror.finish()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod")
def test_a_read_only_mirror_folder_turns_the_mirror_off(smoke_overrides, tmp_path):
    cfg = load_config(SMOKE_CONFIG, smoke_overrides)
    record = RunRecord.create(cfg, tmp_path / "run")
    (record.path / "wandb").mkdir(mode=0o500)
    try:
        with pytest.warns(RuntimeWarning, match="cannot write its folder"):
            assert not WandbMirror(cfg, record).active
    finally:
        (record.path / "wandb").chmod(0o700)


def test_wandb_writes_nothing_outside_the_run_folder(smoke_overrides, tmp_path, monkeypatch):
    home, cwd, tmp = (tmp_path / name for name in ("home", "cwd", "tmp"))
    for folder in (home, cwd, tmp):
        folder.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    # Undo conftest's isolation (and any XDG folders): the mirror must place wandb's own files.
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_DIR"):
        monkeypatch.delenv(var, raising=False)
    for var in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "WANDB_ARTIFACT_DIR"):
        monkeypatch.delenv(var, raising=False)
    cfg = load_config(SMOKE_CONFIG, smoke_overrides)
    with open_session(cfg) as session:
        assert session.mirror.active
        session.log("data", 0, value=1.0)
    run = session.record.path
    assert run.is_relative_to(tmp_path / "runs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "home", "runs", "tmp"]
    assert [list(folder.iterdir()) for folder in (home, cwd, tmp)] == [[], [], []]
    assert list((run / "wandb" / "cache").rglob("core-debug-*.log"))  # wandb-core's log, here
    assert "WANDB_CACHE_DIR" not in os.environ  # the caller's environment is restored
