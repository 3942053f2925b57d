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
    cpuinfo = read_cpuinfo()
    info: dict[str, object] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(cpuinfo),
        "cpu_id": cpu_id(cpuinfo),
        # The vector instruction set torch's CPU kernels run with (e.g. AVX512, AVX2): another
        # one sums in another order, so it decides the bits as much as the model does.
        "cpu_isa": torch.backends.cpu.get_cpu_capability(),
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


def read_cpuinfo(path: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """The first processor's fields of ``path`` (/proc/cpuinfo), or {} where there is none."""
    fields: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if not line.strip():  # the first processor's block ends here
                break
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


def cpu_model(cpuinfo: dict[str, str]) -> str:
    return cpuinfo.get("model name") or platform.processor() or "unknown"


def cpu_id(cpuinfo: dict[str, str]) -> str:
    """Vendor, family, model and stepping, e.g. ``AuthenticAMD family 26 model 2 stepping 1``.
    A virtual machine may show one model name (``AMD EPYC``) for processor generations whose
    float results differ; these numbers tell them apart."""
    keys = ("vendor_id", "cpu family", "model", "stepping")
    if not all(k in cpuinfo for k in keys):
        return platform.machine() or "unknown"
    vendor, family, model, stepping = (cpuinfo[k] for k in keys)
    return f"{vendor} family {family} model {model} stepping {stepping}"
