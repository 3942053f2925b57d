"""Seeding, deterministic mode, per-purpose generators and the environment fingerprint.

One run seed drives everything. Each consumer (data split, loader order, diffusion noise, TTC
sampling, ...) gets its own generator whose seed is derived from ``(seed, stream name)``, so
adding a draw in one place never shifts the random numbers of another.
"""

from __future__ import annotations

import hashlib
import os
import platform
import random
import subprocess
from pathlib import Path

import numpy as np
import torch

CUBLAS_WORKSPACE = ":4096:8"


def seed_everything(seed: int, deterministic: bool, threads: int) -> None:
    """Seed python, numpy and torch; pin the thread count; optionally force determinism."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    if deterministic:
        # cuBLAS reads this when its handle is created, so it must be set before any CUDA work.
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = deterministic


def stream_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the named stream, independent of every other stream's."""
    digest = hashlib.sha256(f"{seed}/{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def torch_generator(seed: int, stream: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator for one purpose of one run, e.g. ``torch_generator(seed, "loader")``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(stream_seed(seed, stream))
    return gen


def numpy_rng(seed: int, stream: str) -> np.random.Generator:
    """A numpy generator for one purpose of one run."""
    return np.random.default_rng(stream_seed(seed, stream))


def environment_fingerprint(device: str = "cpu") -> dict[str, object]:
    """What a result depends on beyond the config: versions, device, threads, CPU, git commit."""
    info: dict[str, object] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda,
        "git_commit": git_commit(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The checkout's HEAD commit (with ``-dirty`` if it has changes), or None outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
