"""Fault injection on the dataset cache (ups/data/dataset.py).

Each test reproduces a fault on a copy of the smoke dataset in ``tmp_path`` and asserts the
refusal (its class, that it names the file and the way out) and that no verified copy is lost.
Builds whose solve is not the point use the cached arrays instead of the solver.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import GOLDEN_CONFIG, SMOKE_CONFIG, Killed
from ups import atomic, cli
from ups.config import load_config
from ups.data import dataset
from ups.data.dataset import (
    DATA_FILE,
    META_FILE,
    SUMS_FILE,
    CacheNotWritableError,
    ChecksumMismatchError,
    DatasetMismatchError,
    ManifestError,
    build_dataset,
    dataset_dir,
    get_dataset,
    load_dataset,
)
from ups.data.splits import SPLITS

SMOKE = load_config(SMOKE_CONFIG).data


@pytest.fixture
def cache(smoke_cache, tmp_path) -> Path:
    """A private cache holding a copy of the smoke dataset, to tamper with."""
    shutil.copytree(dataset_dir(SMOKE, smoke_cache), dataset_dir(SMOKE, tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def no_solver(monkeypatch):
    """Any solve fails the test: what is checked must happen before (or without) solving."""

    def solver_ran(*args):
        raise AssertionError("the solver ran")

    monkeypatch.setattr(dataset, "_solve_chunk", solver_ran)


@pytest.fixture
def cached_generate(smoke_cache, monkeypatch):
    """``generate`` returns the smoke dataset's arrays and datasheet instead of solving."""
    reference = load_dataset(SMOKE, smoke_cache)

    def generate(data, progress=True):
        splits = {name: reference.split(name).copy() for name in SPLITS}
        return splits, json.loads(json.dumps(reference.meta))

    monkeypatch.setattr(dataset, "generate", generate)
    return reference


def _final(cache: Path) -> Path:
    return dataset_dir(SMOKE, cache)


def _resign(folder: Path) -> None:
    """Rewrite SHA256SUMS for the current files, as a tamperer would, so checksums pass."""
    lines = [
        f"{hashlib.sha256((folder / f).read_bytes()).hexdigest()}  {f}\n"
        for f in (DATA_FILE, META_FILE)
    ]
    (folder / SUMS_FILE).write_text("".join(lines))


def _arrays(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / DATA_FILE) as arrays:
        return {name: arrays[name] for name in arrays.files}


def _assert_intact(cache: Path, smoke_cache: Path) -> None:
    """The cache holds the smoke dataset, verified, and nothing else (no lock, no temp)."""
    loaded = load_dataset(SMOKE, cache)
    for name in SPLITS:
        assert np.array_equal(loaded.split(name), load_dataset(SMOKE, smoke_cache).split(name))
    assert [p.name for p in cache.iterdir()] == [_final(cache).name]


def test_cache_folder_names_are_unchanged():
    # Pinned: existing caches (the long experiment's included) must keep their folders.
    assert dataset_dir(SMOKE, "c").name == "burgers-49010a28f2317728"
    assert dataset_dir(load_config(GOLDEN_CONFIG).data, "c").name == "burgers-cb3826505d5423e1"
    earlier = load_config(GOLDEN_CONFIG, ["data.n_val=128", "data.n_test=256"]).data
    # the golden data until stop 38
    assert dataset_dir(earlier, "c").name == "burgers-71ce54d5f64c8c2d"


def test_a_cache_written_in_the_current_format_loads(smoke_cache, tmp_path):
    """The writer before this change: mkdtemp folder (0700), np.savez, sorted JSON, two lines."""
    reference = load_dataset(SMOKE, smoke_cache)
    legacy = _final(tmp_path)
    legacy.mkdir(mode=0o700)
    buffer = io.BytesIO()
    np.savez(buffer, **{name: reference.split(name) for name in SPLITS})
    (legacy / DATA_FILE).write_bytes(buffer.getvalue())
    meta = json.dumps(reference.meta, indent=2, sort_keys=True, allow_nan=False) + "\n"
    (legacy / META_FILE).write_text(meta)
    _resign(legacy)
    loaded = load_dataset(SMOKE, tmp_path)
    assert loaded.meta == reference.meta
    assert all(np.array_equal(loaded.split(n), reference.split(n)) for n in SPLITS)
    # The builder still writes that format: same datasheet bytes, same manifest shape.
    assert (smoke_cache / legacy.name / META_FILE).read_text() == meta
    names = [line.split("  ")[1] for line in (legacy / SUMS_FILE).read_text().splitlines()]
    built = (smoke_cache / legacy.name / SUMS_FILE).read_text().splitlines()
    assert [line.split("  ")[1] for line in built] == names == [DATA_FILE, META_FILE]


def _zeros(folder):
    np.savez(folder / DATA_FILE, **{k: np.zeros_like(v) for k, v in _arrays(folder).items()})


def _drop_one(folder):
    np.savez(folder / DATA_FILE, **{**_arrays(folder), "train": _arrays(folder)["train"][1:]})


def _float32(folder):
    np.savez(folder / DATA_FILE, **{k: v.astype(np.float32) for k, v in _arrays(folder).items()})


def _nan(folder):
    arrays = _arrays(folder)
    arrays["val"][0, 5, 3] = np.nan
    np.savez(folder / DATA_FILE, **arrays)


def _extra_array(folder):
    np.savez(folder / DATA_FILE, **_arrays(folder), holdout=np.zeros(3))


def _meta_edit(key, value):
    def edit(folder):
        meta = json.loads((folder / META_FILE).read_text())
        meta[key] = value(meta)
        (folder / META_FILE).write_text(json.dumps(meta))

    return edit


@pytest.mark.parametrize(
    ("tamper", "file", "message"),
    [
        (_zeros, DATA_FILE, "split 'train' has initial conditions other than"),
        (_drop_one, DATA_FILE, r"split 'train' has shape \(31, 11, 32\).*\(32, 11, 32\)"),
        (_float32, DATA_FILE, "split 'train' has dtype float32"),
        (_nan, DATA_FILE, "split 'val' holds non-finite values"),
        (_extra_array, DATA_FILE, "holds arrays.*holdout"),
        (_meta_edit("counts", lambda m: {**m["counts"], "test": 9}), META_FILE, "counts is"),
        (_meta_edit("t", lambda m: m["t"][:-1]), META_FILE, "frames is 10.*asks for 11"),
        (_meta_edit("config", lambda m: {**m["config"], "nu": 0.02}), META_FILE, "config is"),
    ],
)
def test_arrays_and_datasheet_disagreeing_with_the_config_are_refused(cache, tamper, file, message):
    tamper(_final(cache))
    _resign(_final(cache))  # checksums pass: the content checks must catch it
    with pytest.raises(DatasetMismatchError, match=rf"{_final(cache) / file}: {message}"):
        load_dataset(SMOKE, cache)


def test_cli_reports_a_mismatch_with_exit_2_and_the_way_out(cache, capsys):
    _drop_one(_final(cache))
    _resign(_final(cache))
    code = cli.main(["data", str(SMOKE_CONFIG), f"paths.data_cache={cache}", "--verify"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(_final(cache) / DATA_FILE) in err and "ups data CONFIG --rebuild" in err
    assert "Traceback" not in err


def _sums(folder: Path) -> list[str]:
    return (folder / SUMS_FILE).read_text().splitlines(keepends=True)


def _emptied_with_zero_data(folder):
    _zeros(folder)  # the fault that was seen: this all-zero data.npz passed as verified
    (folder / SUMS_FILE).write_text("")


def _partial(folder):
    (folder / SUMS_FILE).write_text(_sums(folder)[1])


def _lists_absent(folder):
    (folder / SUMS_FILE).write_text("".join(_sums(folder)) + f"{'0' * 64}  extra.bin\n")


def _unlisted_present(folder):
    (folder / "notes.txt").write_text("a file no manifest vouches for")


def _malformed(folder):
    (folder / SUMS_FILE).write_text(_sums(folder)[0][:40] + "\n" + _sums(folder)[1])


def _duplicate(folder):
    (folder / SUMS_FILE).write_text("".join(_sums(folder) + _sums(folder)[:1]))


def _data_missing(folder):
    (folder / DATA_FILE).unlink()


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_emptied_with_zero_data, "SHA256SUMS is empty"),
        (_partial, r"SHA256SUMS does not list \['data.npz'\]"),
        (_lists_absent, r"SHA256SUMS lists \['extra.bin'\], absent from"),
        (_unlisted_present, r"SHA256SUMS does not list \['notes.txt'\]"),
        (_malformed, "SHA256SUMS line 1 is not"),
        (_duplicate, "SHA256SUMS line 3 is not"),
        (_data_missing, "data.npz is missing"),
    ],
)
def test_a_manifest_not_covering_exactly_the_files_is_refused(cache, tamper, message):
    tamper(_final(cache))
    with pytest.raises(ManifestError, match=rf"{message}.*--rebuild"):
        load_dataset(SMOKE, cache)


def test_a_corrupt_file_is_a_checksum_mismatch(cache):
    target = _final(cache) / DATA_FILE
    target.write_bytes(target.read_bytes()[:-100])
    with pytest.raises(ChecksumMismatchError, match=rf"{target} is corrupt or truncated"):
        load_dataset(SMOKE, cache)


def _raise_killed(*args, **kwargs):
    raise Killed("killed mid-rebuild")


@pytest.mark.parametrize("victim", ["write_npz", "write_json", "write_text"])
def test_rebuild_killed_while_writing_keeps_the_previous_dataset(
    cache, smoke_cache, cached_generate, monkeypatch, victim
):
    monkeypatch.setattr(atomic, victim, _raise_killed)
    with pytest.raises(Killed):
        get_dataset(SMOKE, cache, rebuild=True, progress=False)
    _assert_intact(cache, smoke_cache)


def test_rebuild_killed_while_solving_keeps_the_previous_dataset(cache, smoke_cache, monkeypatch):
    monkeypatch.setattr(dataset, "_solve_chunk", _raise_killed)
    with pytest.raises(Killed):
        get_dataset(SMOKE, cache, rebuild=True, progress=False)
    _assert_intact(cache, smoke_cache)


def test_a_rebuild_that_fails_verification_is_not_published(
    cache, smoke_cache, cached_generate, monkeypatch
):
    def bad_generate(data, progress=True):
        zeros = {name: np.zeros_like(cached_generate.split(name)) for name in SPLITS}
        return zeros, json.loads(json.dumps(cached_generate.meta))

    monkeypatch.setattr(dataset, "generate", bad_generate)
    with pytest.raises(DatasetMismatchError, match=r"\.build-.*initial conditions"):
        get_dataset(SMOKE, cache, rebuild=True, progress=False)
    _assert_intact(cache, smoke_cache)


def test_rebuild_failing_between_the_renames_puts_the_old_copy_back(
    cache, smoke_cache, cached_generate, monkeypatch
):
    rename = os.rename

    def failing_rename(src, dst):
        if ".build-" in str(src):
            raise Killed("killed between the renames")
        rename(src, dst)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(Killed):
        get_dataset(SMOKE, cache, rebuild=True, progress=False)
    monkeypatch.setattr(os, "rename", rename)
    assert (_final(cache) / DATA_FILE).is_file()  # back at once, before any next read
    _assert_intact(cache, smoke_cache)


def _crashed_mid_swap(cache: Path) -> Path:
    """The state a kill between the swap's renames leaves: the old copy aside, the new (maybe
    partial) build beside it, no final folder. Returns the aside folder."""
    final = _final(cache)
    shutil.copytree(final, final.with_name(f".{final.name}.build-k1ll3d"))
    aside = final.with_name(f".{final.name}.old")
    final.rename(aside)
    return aside


def test_next_read_restores_a_copy_left_aside_by_a_crashed_swap(cache, smoke_cache):
    aside = _crashed_mid_swap(cache)
    loaded = load_dataset(SMOKE, cache)
    assert loaded.path == _final(cache) and not aside.exists()
    assert np.array_equal(loaded.test, load_dataset(SMOKE, smoke_cache).test)


def test_next_build_restores_the_aside_copy_without_solving(cache, smoke_cache, no_solver):
    _crashed_mid_swap(cache)
    get_dataset(SMOKE, cache, progress=False)
    _assert_intact(cache, smoke_cache)  # the build folder, a leftover, is gone too


def test_a_successful_rebuild_replaces_the_folder_and_leaves_nothing_else(
    cache, smoke_cache, cached_generate
):
    before = _final(cache).stat().st_ino
    get_dataset(SMOKE, cache, rebuild=True, progress=False)
    assert _final(cache).stat().st_ino != before
    _assert_intact(cache, smoke_cache)


def _read_only(monkeypatch, folder: Path) -> None:
    """Opening a new file in ``folder`` fails as on a read-only mount (root ignores chmod)."""
    real_open = os.open

    def open_(path, flags, *args, **kwargs):
        if Path(path).parent == folder and flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)


def test_a_cache_path_that_cannot_be_created_is_refused_before_solving(tmp_path, no_solver):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(CacheNotWritableError, match=rf"{blocker / 'cache'}.*paths.data_cache"):
        get_dataset(SMOKE, blocker / "cache", progress=False)


def test_a_read_only_cache_is_refused_before_solving_but_still_read(
    cache, smoke_cache, no_solver, monkeypatch
):
    _read_only(monkeypatch, cache)
    with pytest.raises(CacheNotWritableError, match=rf"{cache} \(Read-only file system\)"):
        get_dataset(SMOKE, cache, rebuild=True, progress=False)
    assert get_dataset(SMOKE, cache, progress=False).path == _final(cache)
    monkeypatch.undo()
    _assert_intact(cache, smoke_cache)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_folder_without_write_permission_is_refused_before_solving(tmp_path, no_solver):
    tmp_path.joinpath("cache").mkdir(mode=0o555)
    try:
        with pytest.raises(CacheNotWritableError, match="Permission denied"):
            get_dataset(SMOKE, tmp_path / "cache", progress=False)
    finally:
        tmp_path.joinpath("cache").chmod(0o755)


def test_a_read_only_cache_with_a_crashed_swap_says_how_to_restore_it(cache, monkeypatch):
    aside = _crashed_mid_swap(cache)
    _read_only(monkeypatch, cache)
    with pytest.raises(CacheNotWritableError, match=rf"`mv {aside} {_final(cache)}`"):
        load_dataset(SMOKE, cache)


@pytest.mark.parametrize(
    ("mask", "folder_mode", "file_mode"), [(0o002, 0o775, 0o664), (0o077, 0o700, 0o600)]
)
def test_cache_folders_and_files_get_the_users_umask(
    tmp_path, cached_generate, mask, folder_mode, file_mode
):
    previous = os.umask(mask)
    try:
        final = build_dataset(SMOKE, tmp_path / "cache", progress=False)
    finally:
        os.umask(previous)
    assert (tmp_path / "cache").stat().st_mode & 0o777 == folder_mode
    assert final.stat().st_mode & 0o777 == folder_mode
    modes = {p.name: p.stat().st_mode & 0o777 for p in final.iterdir()}
    assert modes == {DATA_FILE: file_mode, META_FILE: file_mode, SUMS_FILE: file_mode}


def test_leftovers_of_killed_builds_are_removed_by_the_next_build(cache, smoke_cache, no_solver):
    final = _final(cache)
    leftovers = [f".{final.name}.build-x1y2z3", f".{final.name}.k3j4h5l6", f".{final.name}.old"]
    for name in leftovers:  # a killed build's partial folder, the old code's, a swap's
        (cache / name).mkdir()
        (cache / name / DATA_FILE).write_bytes(b"partial")
    (cache / f".{final.name}.lock").write_text("")  # its holder was killed: nobody locks it
    other = cache / ".burgers-0123456789abcdef.build-live"  # another dataset's live build
    other.mkdir()
    build_dataset(SMOKE, cache, progress=False)
    assert sorted(p.name for p in cache.iterdir()) == sorted([final.name, other.name])
    other.rmdir()
    _assert_intact(cache, smoke_cache)


def test_a_second_builder_waits_for_the_first_and_keeps_its_copy(tmp_path, smoke_cache, no_solver):
    cache = tmp_path / "cache"
    cache.mkdir()
    lock = cache / f".{_final(cache).name}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the first builder, still solving
    outcome = {}

    def second_builder():
        try:
            outcome["path"] = build_dataset(SMOKE, cache, progress=False)
        except BaseException as err:  # reported by the assertion below
            outcome["error"] = err

    waiter = threading.Thread(target=second_builder)
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive()
    shutil.copytree(dataset_dir(SMOKE, smoke_cache), _final(cache))  # it publishes, releases
    lock.unlink()
    os.close(fd)
    waiter.join(timeout=10)
    assert outcome == {"path": _final(cache)}
    _assert_intact(cache, smoke_cache)  # the waiter kept the copy and solved nothing
