import os
import subprocess

import numpy as np
import torch

from ups.repro import (
    environment_fingerprint,
    git_commit,
    numpy_rng,
    seed_everything,
    stream_seed,
    torch_generator,
)


def test_seed_everything_sets_determinism_threads_and_cublas(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    seed_everything(3, deterministic=True, threads=1)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.get_num_threads() == 1
    assert not torch.backends.cudnn.benchmark
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    seed_everything(3, deterministic=False, threads=2)
    assert not torch.are_deterministic_algorithms_enabled()


def test_seed_everything_makes_global_draws_repeat():
    seed_everything(11, deterministic=True, threads=1)
    first = (torch.rand(3), np.random.rand(3))
    seed_everything(11, deterministic=True, threads=1)
    second = (torch.rand(3), np.random.rand(3))
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])


def test_streams_are_reproducible_and_independent():
    a = torch.rand(4, generator=torch_generator(0, "loader"))
    b = torch.rand(4, generator=torch_generator(0, "loader"))
    c = torch.rand(4, generator=torch_generator(0, "diffusion"))
    d = torch.rand(4, generator=torch_generator(1, "loader"))
    assert torch.equal(a, b)
    assert not torch.equal(a, c) and not torch.equal(a, d)
    assert numpy_rng(5, "x").integers(0, 2**31) == numpy_rng(5, "x").integers(0, 2**31)
    assert stream_seed(0, "a") != stream_seed(0, "b")
    assert 0 <= stream_seed(2**40, "a") < 2**63


def test_environment_fingerprint_follows_threads_and_device(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    info = environment_fingerprint("cpu")
    assert info["torch_threads"] == 3 and info["device"] == "cpu"
    assert "gpu" not in info  # a GPU name only for a cuda device


def test_git_commit_outside_a_checkout_is_none(tmp_path):
    assert git_commit(tmp_path) is None


def test_git_commit_names_head_and_marks_a_dirty_tree(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "f.txt").write_text("a")
    git("add", "f.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert git_commit(tmp_path) == head and len(head) == 40
    (tmp_path / "f.txt").write_text("b")
    assert git_commit(tmp_path) == head + "-dirty"
