"""Fault injection on run folders, checkpoints and records (docs/guarantees.md).

Each test reproduces a fault a user met, on the smoke config, and asserts the refusal: its
exit code, that it names the file and the way out, and that nothing was built on or lost.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, SMOKE_CONFIG, train_killed
from ups import atomic, cli
from ups.config import load_config
from ups.records import run_status
from ups.runlock import run_lock
from ups.train import checkpoint

NO_WANDB = "tracking.wandb.mode=disabled"


def _ups(capsys, *argv) -> tuple[int, str]:
    """Run the CLI in this process: (exit code, stderr)."""
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.fixture
def run_copy(smoke_run, tmp_path) -> Path:
    """A private copy of the shared trained smoke run, to tamper with."""
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run, ignore=shutil.ignore_patterns("eval", "wandb", ".lock"))
    return run


# 1. A run folder has one writer.


def test_a_second_writer_is_refused_naming_the_holder(run_copy, capsys):
    with run_lock(run_copy, "train"):
        code, err = _ups(capsys, "train", "--resume", run_copy)
        assert code == 2
        assert f"in use by `ups train` (pid {os.getpid()}" in err
        code, err = _ups(capsys, "eval", run_copy, "--no-progress")
        assert code == 2 and "in use by `ups train`" in err
    assert not (run_copy / "eval").exists()  # the refused eval wrote nothing
    code, _ = _ups(capsys, "eval", run_copy, "--no-progress")  # the lock went with its block
    assert code == 0


def test_the_lock_holds_across_processes_and_dies_with_its_holder(run_copy, capsys):
    script = (
        "import time; from ups.runlock import run_lock\n"
        f"with run_lock({str(run_copy)!r}, 'eval'):\n"
        "    print('held', flush=True); time.sleep(120)"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as p:
        try:
            assert p.stdout.readline().strip() == "held"
            code, err = _ups(capsys, "train", "--resume", run_copy)
            assert code == 2 and f"`ups eval` (pid {p.pid}" in err
        finally:
            p.kill()  # as kill -9: no cleanup runs, the kernel drops the lock
    with run_lock(run_copy, "train"):
        pass


# 2. Nothing builds on, or reports from, an unfinished stage.


def test_nothing_builds_on_a_half_trained_operator(tmp_path, smoke_overrides, monkeypatch, capsys):
    run = tmp_path / "run"
    train_killed(run, [NO_WANDB, *smoke_overrides], monkeypatch, 2, "operator.last")
    assert (run / "checkpoints" / "operator.pt").is_file()  # a best of the epochs it got to

    code, err = _ups(capsys, "train", "--resume", run, "--stage", "diffusion")
    assert code == 2
    assert "'operator' stage" in err and "unfinished (epoch 1 of 6)" in err
    assert f"ups train --resume {run} --stage operator" in err
    assert not (run / "checkpoints" / "diffusion.pt").exists()

    code, err = _ups(capsys, "eval", run, "--no-progress")
    assert code == 2 and "not finished" in err and f"ups train --resume {run}" in err
    assert not (run / "eval").exists()

    assert _ups(capsys, "train", "--resume", run, "--no-progress")[0] == 0
    assert run_status(run) == "finished"
    assert _ups(capsys, "eval", run, "--no-progress")[0] == 0


def test_eval_refuses_a_run_killed_mid_diffusion(tmp_path, smoke_overrides, monkeypatch, capsys):
    run = tmp_path / "run"
    train_killed(run, [NO_WANDB, *smoke_overrides], monkeypatch, 1, "diffusion.last")
    assert (run / "checkpoints" / "diffusion.pt").is_file()
    code, err = _ups(capsys, "eval", run, "--no-progress")
    assert code == 2 and f"run {run} is 'failed'" in err
    assert not (run / "eval").exists()


def test_a_seed_killed_after_its_best_checkpoints_is_resumed_not_evaluated(
    tmp_path, smoke_overrides, monkeypatch
):
    from ups.seeds import run_seed

    out = tmp_path / "seeds"
    overrides = [NO_WANDB, *smoke_overrides]
    # The last stage's best checkpoint exists, so every stage has its <stage>.pt.
    train_killed(out / "seed0", [*overrides, "seed=0"], monkeypatch, 1, "consistency.last")
    result = run_seed(str(SMOKE_CONFIG), overrides, 0, str(out))
    assert run_status(out / "seed0") == "finished"
    last = torch.load(out / "seed0" / "checkpoints" / "consistency.last.pt", weights_only=True)
    epochs = load_config(SMOKE_CONFIG).consistency.train.epochs
    assert last["state"]["epoch"] == epochs or last["state"]["stopped_early"]
    assert (out / "seed0" / "eval" / "test" / "report.md").is_file() and result.metrics["nrmse"] > 0


# 3. Every artifact is checked against what the reader expects.


def test_a_checkpoint_of_another_stage_is_refused(run_copy, capsys):
    ckpts = run_copy / "checkpoints"
    shutil.copy(ckpts / "operator.pt", ckpts / "autoencoder.pt")
    code, err = _ups(capsys, "eval", run_copy, "--no-progress")
    assert code == 2
    assert f"{ckpts / 'autoencoder.pt'} is a checkpoint of the 'operator' stage" in err


# 5. Every failure a user can cause: a named error, exit 2, no traceback.


def test_a_truncated_checkpoint_is_named(run_copy, capsys):
    path = run_copy / "checkpoints" / "operator.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    code, err = _ups(capsys, "eval", run_copy, "--no-progress")
    assert code == 2
    assert f"{path} is truncated or not a checkpoint" in err and "Traceback" not in err


class _Smuggled:
    """Pickles as a call, as a malicious checkpoint would."""

    def __reduce__(self):
        return (print, ("unpickled",))


def test_a_pickle_is_refused_and_the_unsafe_way_never_suggested(run_copy, capsys):
    path = run_copy / "checkpoints" / "operator.pt"
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "extra": _Smuggled()}, path)
    code, err = _ups(capsys, "eval", run_copy, "--no-progress")
    assert code == 2 and f"{path} was refused" in err
    assert "weights_only" not in err and "unpickled" not in capsys.readouterr().out


def test_a_torn_run_record_is_named(run_copy, capsys):
    path = run_copy / "run.json"
    path.write_text(path.read_text()[:40])
    code, err = _ups(capsys, "eval", run_copy, "--no-progress")
    assert code == 2 and f"{path} is torn or not valid JSON" in err


def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    target.write_text('{"old": 1}')

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(atomic.ArtifactWriteError, match=f"could not write {target}: No space"):
        atomic.write_json(target, {"new": 2})
    assert json.loads(target.read_text()) == {"old": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]  # no temp file left


def test_a_read_only_runs_folder_is_refused_before_solving(tmp_path, monkeypatch, capsys):
    import ups.pipeline

    runs = tmp_path / "runs"
    runs.mkdir()
    # As root, a chmod does not stop writes: stand in for a read-only folder.
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != runs and real_access(p, mode))

    def solve(*args, **kwargs):
        raise AssertionError("the dataset was built before the runs folder was checked")

    monkeypatch.setattr(ups.pipeline, "get_dataset", solve)
    argv = ["train", SMOKE_CONFIG, f"paths.runs={runs}", f"paths.data_cache={tmp_path / 'c'}"]
    code, err = _ups(capsys, *argv)
    assert code == 2 and f"cannot write under {runs}" in err
    assert list(runs.iterdir()) == []


def test_a_run_dir_that_is_a_file_is_refused(tmp_path, smoke_overrides, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    code, err = _ups(capsys, "train", SMOKE_CONFIG, "--run-dir", path, *smoke_overrides)
    assert code == 2 and f"{path} is a file, not a run folder" in err
    assert path.read_text() == "mine"


def test_cuda_on_a_machine_without_it_is_refused_before_a_run_folder_exists(
    tmp_path, smoke_overrides, monkeypatch, capsys
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    run = tmp_path / "run"
    code, err = _ups(
        capsys, "train", SMOKE_CONFIG, "--run-dir", run, "device=cuda", *smoke_overrides
    )
    assert code == 2 and "this machine has no CUDA device; set device: cpu" in err
    assert not run.exists()


# 6. Signals are handled like a person expects.


def test_an_interrupt_marks_the_run_and_a_resume_clears_it(
    tmp_path, smoke_overrides, monkeypatch, capsys
):
    run = tmp_path / "run"
    save = checkpoint.save

    def ctrl_c(path, *args, **kwargs):
        if Path(path).name.startswith("operator"):
            raise KeyboardInterrupt
        return save(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "save", ctrl_c)
    argv = ["train", SMOKE_CONFIG, "--run-dir", run, "--no-progress", NO_WANDB, *smoke_overrides]
    code, err = _ups(capsys, *argv)
    assert code == 130
    assert err.strip() == f"ups train: interrupted; resume with `ups train --resume {run}`"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted"
    monkeypatch.setattr(checkpoint, "save", save)
    orphan = run / "checkpoints" / ".operator.last.pt.x1y2.tmp"  # a write a kill cut short
    orphan.write_bytes(b"half")

    assert _ups(capsys, "train", "--resume", run, "--no-progress")[0] == 0
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and "error" not in info
    assert not orphan.exists()


def test_sigterm_marks_the_run_interrupted(tmp_path, smoke_cache):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "ups", "train", str(SMOKE_CONFIG), "--run-dir", str(run)]
    cmd += ["--no-progress", NO_WANDB, f"paths.data_cache={smoke_cache}"]
    with subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True) as proc:
        deadline = time.monotonic() + 120
        while not (run / "checkpoints" / "autoencoder.last.pt").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "training never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"interrupted; resume with `ups train --resume {run}`" in err
    assert "Traceback" not in err
    assert run_status(run) == "interrupted"


# 8. Files get the user's umask.


def test_run_files_and_folders_get_the_users_umask(tmp_path):
    from ups.records import RunRecord

    previous = os.umask(0o002)
    try:
        record = RunRecord.create(load_config(SMOKE_CONFIG), tmp_path / "run")
        record.update_metrics({"x": 1.0})
        atomic.torch_save({"w": torch.zeros(1)}, record.checkpoint_path("autoencoder"))
    finally:
        os.umask(previous)
    modes = {p.name: p.stat().st_mode & 0o777 for p in [record.path, *record.path.rglob("*")]}
    assert modes == {
        "run": 0o775,
        "config.yaml": 0o664,
        "run.json": 0o664,
        "metrics.json": 0o664,
        "checkpoints": 0o775,
        "autoencoder.pt": 0o664,
    }
