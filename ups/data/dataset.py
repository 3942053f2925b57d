"""Build, cache, verify and load a Burgers dataset.

A dataset's identity is the hash of its config section plus the generator version; its cache
folder ``<cache>/burgers-<id16>/`` holds ``data.npz`` (train/val/test arrays (N, T, X), float64,
physical units), ``meta.json`` (the datasheet: config, grid, nu, dt, IC hashes, train stats,
timing, versions) and ``SHA256SUMS``, which lists exactly those two files.

Loading refuses bad data with a :class:`DatasetError` subclass naming the file and the fix: a
manifest that does not list exactly the folder's files, a checksum mismatch, a datasheet of
another config, arrays whose keys, shapes (n_split, frames, points), dtype, finiteness or
initial-condition hashes disagree with the config and the datasheet.

Building never touches the previous copy before the new one is complete and verified:

1. Hold ``.burgers-<id16>.lock`` beside the folder (``flock``; the kernel frees it when its
   holder dies): one builder per dataset. Creating it is also the check, before any solving,
   that the cache can be written. Under the lock, leftovers of killed builders are removed.
2. Write into ``.burgers-<id16>.build-XXXX/`` beside the final folder and verify it as a load
   would.
3. Swap: rename the old folder to ``.burgers-<id16>.old``, rename the new one in, delete the
   old. A crash between the two renames leaves no final folder but ``.old``: the next load or
   build renames it back (under the lock, so never in the middle of a live swap).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
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
# One manifest line, as the builder writes it: "<sha256 hex>  <file name>".
_SUMS_LINE = re.compile(r"([0-9a-f]{64})  ([^/\\]+)")


class DatasetError(RuntimeError):
    """A cached dataset is missing, corrupt or not the one the config asks for."""


class ManifestError(DatasetError):
    """``SHA256SUMS`` is missing, empty, malformed, or does not list exactly the folder's files."""


class ChecksumMismatchError(DatasetError):
    """A file's sha256 differs from the one ``SHA256SUMS`` records: corrupt or truncated."""


class DatasetMismatchError(DatasetError):
    """A dataset's arrays, datasheet and config disagree (shapes, dtype, counts, identity)."""


class CacheNotWritableError(DatasetError):
    """The data cache cannot be created or written; found before any solving."""


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
    """Load the cached dataset, building it first if absent (or if ``rebuild``: the new copy
    replaces the old one only once it is complete and verified)."""
    if rebuild or not dataset_dir(data, cache_dir).is_dir():
        build_dataset(data, cache_dir, progress=progress, replace=rebuild)
    return load_dataset(data, cache_dir)


def load_dataset(data: DataConfig, cache_dir: str | Path) -> BurgersDataset:
    """Load and verify; raises a :class:`DatasetError` naming the bad file and the fix."""
    path = dataset_dir(data, cache_dir)
    if not path.is_dir() and _aside(path).is_dir():
        _restore_after_crash(path)
    if not path.is_dir():
        raise DatasetError(f"no dataset at {path}; build it with `ups data CONFIG`")
    meta, splits = _read_verified(path, data)
    return BurgersDataset(path=path, meta=meta, **splits)


def build_dataset(
    data: DataConfig, cache_dir: str | Path, progress: bool = True, replace: bool = False
) -> Path:
    """Generate the dataset and publish it atomically; returns its folder.

    Without ``replace``, a copy already published (by a concurrent builder this one waited
    for) is kept. With it, the old copy stays in place until the new one is verified."""
    final = dataset_dir(data, cache_dir)
    with _dataset_lock(final, progress):
        _restore_aside(final)
        _remove_leftovers(final)
        if final.is_dir() and not replace:
            return final
        if progress:
            say(f"building the dataset ({data.n_total} trajectories), cached in {final}")
        start = time.perf_counter()
        splits, meta = generate(data, progress=progress)
        meta["generation_seconds"] = round(time.perf_counter() - start, 3)
        new = atomic.temp_dir(final.parent, prefix=f".{final.name}.build-")
        try:
            _write_dataset(new, splits, meta)
            _read_verified(new, data)
            _swap_in(new, final)
        except BaseException:
            # The old copy is untouched (or already put back); a leftover goes next build.
            shutil.rmtree(new, ignore_errors=True)
            raise
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
    """Check that SHA256SUMS lists exactly the folder's files and that each matches its digest."""
    for name, digest in _read_manifest(path).items():
        file = path / name
        if _sha256(file) != digest:
            raise ChecksumMismatchError(
                f"{file} is corrupt or truncated (checksum mismatch); {_REBUILD_HINT}"
            )


_REBUILD_HINT = "delete the folder or run `ups data CONFIG --rebuild` to regenerate it"


def _read_manifest(path: Path) -> dict[str, str]:
    """{file name: sha256 hex} from ``path/SHA256SUMS``, refused unless it names exactly the
    folder's other files (an emptied or partial manifest would otherwise verify nothing)."""
    sums = path / SUMS_FILE
    if not sums.is_file():
        raise ManifestError(f"{sums} is missing: the cache is incomplete; {_REBUILD_HINT}")
    listed: dict[str, str] = {}
    for number, line in enumerate(sums.read_text().splitlines(), start=1):
        match = _SUMS_LINE.fullmatch(line)
        if match is None or match[2] in listed:
            raise ManifestError(
                f"{sums} line {number} is not a `<sha256>  <file>` line of a new file: "
                f"{line!r}; {_REBUILD_HINT}"
            )
        listed[match[2]] = match[1]
    present = {p.name for p in path.iterdir()} - {SUMS_FILE}
    for name in (DATA_FILE, META_FILE):
        if name not in present:
            raise ManifestError(f"{path / name} is missing; {_REBUILD_HINT}")
    if not listed:
        raise ManifestError(f"{sums} is empty: it verifies nothing; {_REBUILD_HINT}")
    if absent := sorted(listed.keys() - present):
        raise ManifestError(f"{sums} lists {absent}, absent from {path}; {_REBUILD_HINT}")
    if unlisted := sorted(present - listed.keys()):
        raise ManifestError(
            f"{sums} does not list {unlisted} of {path}: the manifest is partial or the folder "
            f"holds foreign files; {_REBUILD_HINT}"
        )
    return listed


def _read_verified(path: Path, data: DataConfig) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(datasheet, {split: (N, T, X)}) of the folder, once every check of a load has passed."""
    verify_checksums(path)
    meta = json.loads((path / META_FILE).read_text())
    if meta.get("dataset_id") != dataset_id(data):
        raise DatasetMismatchError(f"{path / META_FILE} belongs to another config; {_REBUILD_HINT}")
    _check_datasheet(path / META_FILE, meta, data)
    with np.load(path / DATA_FILE, allow_pickle=False) as arrays:
        if sorted(arrays.files) != sorted(SPLITS):
            raise DatasetMismatchError(
                f"{path / DATA_FILE}: holds arrays {sorted(arrays.files)}, not the splits "
                f"{list(SPLITS)}; {_REBUILD_HINT}"
            )
        splits = {name: arrays[name] for name in SPLITS}
    for name in SPLITS:
        _check_split(path / DATA_FILE, name, splits[name], meta, data)
    return meta, splits


def _check_datasheet(file: Path, meta: dict[str, Any], data: DataConfig) -> None:
    """The datasheet's config, split counts and grids are the config's."""
    expected = {
        "config": asdict(data),
        "counts": _counts(data),
        "frames": data.frames,
        "points": data.points,
    }
    found = {
        "config": meta.get("config"),
        "counts": meta.get("counts"),
        "frames": len(meta.get("t", [])),
        "points": len(meta.get("x", [])),
    }
    for key, value in expected.items():
        if found[key] != value:
            raise DatasetMismatchError(
                f"{file}: {key} is {found[key]}, but the config asks for {value}; {_REBUILD_HINT}"
            )


def _check_split(
    file: Path, name: str, u: np.ndarray, meta: dict[str, Any], data: DataConfig
) -> None:
    """One split's trajectories u (N, T, X): the config's shape, float64, finite, and their
    initial conditions are the ones the datasheet hashed (an all-zero array is not)."""
    shape = (_counts(data)[name], data.frames, data.points)
    if u.shape != shape:
        problem = f"has shape {u.shape}, but the config asks for {shape} (n_{name}, frames, points)"
    elif u.dtype != np.float64:
        problem = f"has dtype {u.dtype}, not float64"
    elif not np.isfinite(u).all():
        problem = "holds non-finite values"
    elif [initial_condition_hash(v[0]) for v in u] != meta["ic_hashes"][name]:
        problem = f"has initial conditions other than {META_FILE}'s ic_hashes"
    else:
        return
    raise DatasetMismatchError(f"{file}: split {name!r} {problem}; {_REBUILD_HINT}")


def _counts(data: DataConfig) -> dict[str, int]:
    return {"train": data.n_train, "val": data.n_val, "test": data.n_test}


def _write_dataset(folder: Path, splits: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """data.npz, meta.json and their SHA256SUMS into an empty ``folder``."""
    atomic.write_npz(folder / DATA_FILE, splits)
    atomic.write_json(folder / META_FILE, meta)
    sums = "".join(f"{_sha256(folder / f)}  {f}\n" for f in (DATA_FILE, META_FILE))
    atomic.write_text(folder / SUMS_FILE, sums)


def _aside(final: Path) -> Path:
    """Where the swap parks the previous copy until the new one is in place."""
    return final.with_name(f".{final.name}.old")


def _swap_in(new: Path, final: Path) -> None:
    """Publish the verified folder ``new`` as ``final``; a previous ``final`` is set aside
    first and deleted last, so some complete copy exists at every moment."""
    aside = _aside(final)
    if final.exists():
        os.rename(final, aside)
    try:
        os.rename(new, final)
    except BaseException:
        _restore_aside(final)
        raise
    # Published; a part the deletion leaves behind is a leftover the next build removes.
    shutil.rmtree(aside, ignore_errors=True)


def _restore_aside(final: Path) -> None:
    """Put the previous copy back where a swap stopped between its renames (hold the lock)."""
    aside = _aside(final)
    if not final.exists() and aside.is_dir():
        os.rename(aside, final)
        say(f"restored {final}: a rebuild had stopped before replacing it")


def _restore_after_crash(final: Path) -> None:
    """Restore the copy a crashed swap set aside, under the lock (a live swap finishes first)."""
    try:
        with _dataset_lock(final, progress=True):
            _restore_aside(final)
    except CacheNotWritableError as err:
        raise CacheNotWritableError(
            f"{final} is missing: a rebuild stopped mid-swap, and its previous copy "
            f"{_aside(final)} cannot be moved back ({err}); or restore it by hand: "
            f"`mv {_aside(final)} {final}`"
        ) from err


def _remove_leftovers(final: Path) -> None:
    """Delete the folders killed builders left beside ``final`` (hold the lock: then no
    builder of this dataset is alive). One that cannot be deleted is reported and skipped."""
    for leftover in final.parent.glob(f".{final.name}.*"):
        if not leftover.is_dir():  # the lock file itself
            continue
        try:
            shutil.rmtree(leftover)
        except OSError as err:
            say(f"could not remove {leftover}, left by a killed build ({err}); delete it by hand")


@contextmanager
def _dataset_lock(final: Path, progress: bool) -> Iterator[None]:
    """Hold ``.<final>.lock`` for the block: one builder or restorer per dataset at a time.

    The file is deleted on release so that the cache holds only datasets; a waiter that then
    finds it held a deleted file's lock retries on the current one."""
    path = final.with_name(f".{final.name}.lock")
    fd = _lock_fd(path, final, progress)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _lock_fd(path: Path, final: Path, progress: bool) -> int:
    """An open descriptor of the lock file ``path``, flocked exclusively."""
    while True:
        fd = _open_lock_file(path)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if progress:
                    say(f"waiting for another process building {final}")
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _open_lock_file(path: Path) -> int:
    """Create or open the lock file: the probe that the cache can be written, before solving."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise CacheNotWritableError(
            f"cannot write the data cache {path.parent} ({err.strerror or err}): make it "
            "writable, or point paths.data_cache at a folder you can write "
            "(`ups data CONFIG paths.data_cache=DIR`)"
        ) from err


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the open file ``fd`` (a releaser may have deleted it)."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
