"""Build, cache, verify and load a Burgers dataset.

A dataset's identity is the hash of its config section plus the generator version; its cache
folder ``<cache>/burgers-<id16>/`` holds ``data.npz`` (train/val/test arrays (N, T, X), float64,
physical units), ``meta.json`` (the datasheet: config, grid, nu, dt, IC hashes, train stats,
timing, versions) and ``SHA256SUMS``. Loading verifies the checksums and refuses bad data.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ups import atomic
from ups.config import canonical_json
from ups.data.normalize import Normalizer
from ups.data.splits import SPLITS, check_disjoint, initial_condition_hash, split_indices
from ups.physics.burgers import downsample, solve_burgers
from ups.physics.initial_conditions import sample_initial_conditions
from ups.processes import available_cpus, run_in_processes
from ups.progress import say
from ups.repro import numpy_rng
from ups.schema import DataConfig

# Bump when the solver or the initial-condition sampler changes what a config produces.
GENERATOR_VERSION = 1
DATA_FILE, META_FILE, SUMS_FILE = "data.npz", "meta.json", "SHA256SUMS"


class DatasetError(RuntimeError):
    """A cached dataset is missing, corrupt or not the one the config asks for."""


@dataclass(frozen=True)
class BurgersDataset:
    """Loaded, verified trajectories in physical units plus their datasheet."""

    path: Path
    meta: dict[str, Any]
    train: np.ndarray  # (N_train, T, X)
    val: np.ndarray  # (N_val, T, X)
    test: np.ndarray  # (N_test, T, X)

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {SPLITS}")
        return getattr(self, name)

    @property
    def normalizer(self) -> Normalizer:
        return Normalizer.from_dict(self.meta["train_stats"])

    @property
    def nu(self) -> float:
        return self.meta["nu"]

    @property
    def eps(self) -> float:
        return self.meta["eps"]

    @property
    def dt(self) -> float:
        return self.meta["dt"]

    @property
    def dx(self) -> float:
        return self.meta["dx"]


def dataset_id(data: DataConfig) -> str:
    """sha256 of the data config and the generator version."""
    ident = {"config": asdict(data), "generator_version": GENERATOR_VERSION}
    return hashlib.sha256(canonical_json(ident).encode()).hexdigest()


def dataset_dir(data: DataConfig, cache_dir: str | Path) -> Path:
    return Path(cache_dir) / f"burgers-{dataset_id(data)[:16]}"


def get_dataset(
    data: DataConfig, cache_dir: str | Path, rebuild: bool = False, progress: bool = True
) -> BurgersDataset:
    """Load the cached dataset, building it first if absent (or if ``rebuild``)."""
    path = dataset_dir(data, cache_dir)
    if rebuild and path.exists():
        shutil.rmtree(path)
    if not path.exists():
        if progress:
            say(f"building the dataset ({data.n_total} trajectories), cached in {path}")
        build_dataset(data, cache_dir, progress=progress)
    return load_dataset(data, cache_dir)


def load_dataset(data: DataConfig, cache_dir: str | Path) -> BurgersDataset:
    """Load and verify; raises :class:`DatasetError` naming the bad file and the fix."""
    path = dataset_dir(data, cache_dir)
    if not path.is_dir():
        raise DatasetError(f"no dataset at {path}; build it with `ups data CONFIG`")
    verify_checksums(path)
    meta = json.loads((path / META_FILE).read_text())
    if meta.get("dataset_id") != dataset_id(data):
        raise DatasetError(f"{path / META_FILE} belongs to another config; {_REBUILD_HINT}")
    with np.load(path / DATA_FILE, allow_pickle=False) as arrays:
        splits = {name: arrays[name] for name in SPLITS}
    return BurgersDataset(path=path, meta=meta, **splits)


def build_dataset(data: DataConfig, cache_dir: str | Path, progress: bool = True) -> Path:
    """Generate the dataset and publish it atomically (a concurrent builder's copy wins)."""
    final = dataset_dir(data, cache_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    splits, meta = generate(data, progress=progress)
    meta["generation_seconds"] = round(time.perf_counter() - start, 3)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
    try:
        atomic.write_npz(tmp / DATA_FILE, splits)
        atomic.write_json(tmp / META_FILE, meta)
        sums = "".join(f"{_sha256(tmp / f)}  {f}\n" for f in (DATA_FILE, META_FILE))
        atomic.write_text(tmp / SUMS_FILE, sums)
        tmp.rename(final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.is_dir():
            raise
        # Another process published the same dataset first; load_dataset verifies its copy.
    return final


def generate(
    data: DataConfig, progress: bool = True, jobs: int | None = None
) -> tuple[dict[str, np.ndarray], dict]:
    """Solve all trajectories and split them: ({split: (N, T, X)}, datasheet dict).

    The solver's chunks run in ``jobs`` processes (default: every available core)."""
    x_fine = np.arange(data.fine_points) / data.fine_points
    t_out = np.linspace(0.0, data.t_final, data.frames)
    u0 = sample_initial_conditions(
        numpy_rng(data.seed, "data/initial_conditions"), data.n_total, x_fine
    )
    coarse = np.empty((data.n_total, data.frames, data.points))
    # The step size follows a chunk's fastest trajectory, so chunks of similar speed step least.
    by_speed = np.argsort(np.max(np.abs(u0), axis=-1), kind="stable")
    chunks = np.array_split(by_speed, -(-data.n_total // data.solver_chunk))
    # A chunk's solution depends on that chunk alone, so the workers change nothing but the time.
    args = [(data, u0[rows], t_out) for rows in chunks]
    jobs = min(jobs or available_cpus(), len(chunks))
    desc = "solving Burgers" if progress else None
    solved = run_in_processes(_solve_chunk, args, jobs, fresh=False, desc=desc)
    for rows, frames in zip(chunks, solved, strict=True):
        coarse[rows] = frames
    counts = {"train": data.n_train, "val": data.n_val, "test": data.n_test}
    index = split_indices(numpy_rng(data.seed, "data/split"), counts)
    splits = {name: coarse[index[name]] for name in SPLITS}
    hashes = {name: [initial_condition_hash(u[0]) for u in splits[name]] for name in SPLITS}
    check_disjoint(hashes)
    meta = {
        "dataset_id": dataset_id(data),
        "generator_version": GENERATOR_VERSION,
        "config": asdict(data),
        "equation": "u_t + (u^2/2)_x = eps u_xx, eps = nu/pi, x in [0,1) periodic",
        "nu": data.nu,
        "eps": data.eps,
        "dt": data.dt,
        "dx": 1.0 / data.points,
        "x": (np.arange(data.points) / data.points).tolist(),
        "t": t_out.tolist(),
        "counts": counts,
        "ic_hashes": hashes,
        "train_stats": Normalizer.fit(splits["train"]).to_dict(),
        "versions": {"numpy": np.__version__},
    }
    return splits, meta


def _solve_chunk(data: DataConfig, u0: np.ndarray, t_out: np.ndarray) -> np.ndarray:
    """Fine initial states (B, fine_points) -> the stored frames (B, frames, points)."""
    fine = solve_burgers(u0, data.eps, t_out, data.solver_dt_max, cfl=data.solver_cfl)
    return downsample(fine, data.fine_points // data.points)


def verify_checksums(path: Path) -> None:
    """Compare every file listed in SHA256SUMS with its recorded digest."""
    sums = path / SUMS_FILE
    if not sums.is_file():
        raise DatasetError(f"{sums} is missing: the cache is incomplete; {_REBUILD_HINT}")
    for line in sums.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        file = path / name
        if not file.is_file():
            raise DatasetError(f"{file} is missing; {_REBUILD_HINT}")
        if _sha256(file) != digest:
            raise DatasetError(
                f"{file} is corrupt or truncated (checksum mismatch); {_REBUILD_HINT}"
            )


_REBUILD_HINT = "delete the folder or run `ups data CONFIG --rebuild` to regenerate it"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
