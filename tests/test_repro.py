import os

import numpy as np
import torch

from ups.repro import (
    environment_fingerprint,
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


def test_environment_fingerprint_has_versions_and_device():
    info = environment_fingerprint("cpu")
    assert info["torch"] == torch.__version__ and info["numpy"] == np.__version__
    assert info["device"] == "cpu" and info["torch_threads"] >= 1
    assert isinstance(info["python"], str) and isinstance(info["cpu"], str)
    assert "git_commit" in info
