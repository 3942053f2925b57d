import os
import platform
import subprocess

import numpy as np
import torch

from ups.repro import (
    cpu_id,
    cpu_model,
    environment_fingerprint,
    git_commit,
    numpy_rng,
    read_cpuinfo,
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
    assert info["cpu_isa"] == torch.backends.cpu.get_cpu_capability()


def test_cpu_id_names_vendor_family_model_and_stepping_of_the_first_processor(tmp_path):
    block = (
        "processor\t: {n}\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: {m}\n"
        "model name\t: AMD EPYC\nstepping\t: 1\n"
    )
    path = tmp_path / "cpuinfo"
    path.write_text(block.format(n=0, m=2) + "\n" + block.format(n=1, m=9))
    cpuinfo = read_cpuinfo(path)
    assert cpu_model(cpuinfo) == "AMD EPYC"
    assert cpu_id(cpuinfo) == "AuthenticAMD family 26 model 2 stepping 1"
    assert read_cpuinfo(tmp_path / "absent") == {}
    assert cpu_id({}) == platform.machine()  # no /proc/cpuinfo: the architecture at least


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
