import json
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import SMOKE_CONFIG
from ups.config import load_config
from ups.data.dataset import (
    DATA_FILE,
    META_FILE,
    DatasetError,
    build_dataset,
    dataset_dir,
    dataset_id,
    generate,
    get_dataset,
    load_dataset,
)
from ups.data.splits import SPLITS, initial_condition_hash, split_indices
from ups.physics.burgers import downsample, solve_burgers
from ups.physics.initial_conditions import sample_initial_conditions
from ups.physics.invariants import energy, mass
from ups.repro import numpy_rng

SMOKE = load_config(SMOKE_CONFIG).data


@pytest.fixture
def smoke(smoke_cache):
    return load_dataset(SMOKE, smoke_cache)


def test_shapes_counts_and_datasheet(smoke):
    for name, n in zip(SPLITS, (SMOKE.n_train, SMOKE.n_val, SMOKE.n_test), strict=True):
        assert smoke.split(name).shape == (n, SMOKE.frames, SMOKE.points)
        assert smoke.split(name).dtype == np.float64
    assert smoke.nu == 0.01 and smoke.eps == pytest.approx(0.01 / np.pi)
    assert smoke.dt == pytest.approx(0.2) and smoke.dx == pytest.approx(1 / 32)
    assert smoke.meta["dataset_id"] == dataset_id(SMOKE)
    with pytest.raises(ValueError, match="unknown split"):
        smoke.split("holdout")


def test_splits_are_disjoint_by_initial_condition_hash(smoke):
    hashes = {n: {initial_condition_hash(u[0]) for u in smoke.split(n)} for n in SPLITS}
    assert len(hashes["train"]) == SMOKE.n_train
    assert not hashes["train"] & hashes["val"]
    assert not hashes["train"] & hashes["test"]
    assert not hashes["val"] & hashes["test"]
    assert hashes == {n: set(smoke.meta["ic_hashes"][n]) for n in SPLITS}


def test_normalisation_stats_come_from_train_only(smoke):
    stats = smoke.meta["train_stats"]
    assert stats["mean"] == pytest.approx(np.mean(smoke.train), abs=1e-15)
    assert stats["std"] == pytest.approx(np.std(smoke.train), rel=1e-12)
    everything = np.concatenate([smoke.train, smoke.val, smoke.test])
    assert stats["std"] != pytest.approx(np.std(everything), rel=1e-9)


def test_stored_trajectories_obey_the_physics(smoke):
    u = smoke.train
    drift = np.abs(mass(u) - mass(u[:, :1]))
    assert drift.max() < 1e-12 * max(1.0, np.abs(u).max())
    e = energy(u)
    assert np.all(np.diff(e, axis=1) <= 1e-12)


def test_stored_frames_match_an_independent_fine_solve(smoke):
    """Test frames are the fine solution of their own initial condition, cell-averaged."""
    x_fine = np.arange(SMOKE.fine_points) / SMOKE.fine_points
    u0 = sample_initial_conditions(
        numpy_rng(SMOKE.seed, "data/initial_conditions"), SMOKE.n_total, x_fine
    )
    counts = {"train": SMOKE.n_train, "val": SMOKE.n_val, "test": SMOKE.n_test}
    picked = split_indices(numpy_rng(SMOKE.seed, "data/split"), counts)["test"][:3]
    t = np.asarray(smoke.meta["t"])
    fine = solve_burgers(u0[picked], SMOKE.eps, t, SMOKE.solver_dt_max)
    coarse = downsample(fine, SMOKE.fine_points // SMOKE.points)
    # Not bitwise: the adaptive step sees a smaller batch here, so its dt differs slightly.
    np.testing.assert_allclose(coarse, smoke.test[:3], atol=1e-5)


def test_same_config_same_bytes_across_processes(tmp_path, smoke_cache):
    code = (
        "from ups.config import load_config; from ups.data.dataset import build_dataset;"
        f"build_dataset(load_config(r'{SMOKE_CONFIG}').data, r'{tmp_path}', progress=False)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    fresh = np.load(dataset_dir(SMOKE, tmp_path) / DATA_FILE)
    cached = np.load(dataset_dir(SMOKE, smoke_cache) / DATA_FILE)
    for name in SPLITS:
        assert np.array_equal(fresh[name], cached[name])


def test_solving_in_worker_processes_gives_the_same_bytes():
    # Three chunks on two workers, against one process: a chunk's solution is its own.
    chunked = load_config(SMOKE_CONFIG, ["data.solver_chunk=16"]).data
    alone, meta_alone = generate(chunked, progress=False, jobs=1)
    pooled, meta_pooled = generate(chunked, progress=False, jobs=2)
    for name in SPLITS:
        assert np.array_equal(pooled[name], alone[name])
    assert meta_pooled == meta_alone


def test_other_seed_gives_other_dataset_identity():
    other = load_config(SMOKE_CONFIG, ["data.seed=1"]).data
    assert dataset_id(other) != dataset_id(SMOKE)
    assert dataset_id(load_config(SMOKE_CONFIG, ["seed=5"]).data) == dataset_id(SMOKE)


@pytest.mark.parametrize("victim", [DATA_FILE, META_FILE])
def test_corrupt_or_truncated_cache_is_refused_naming_file(tmp_path, smoke_cache, victim):
    import shutil

    shutil.copytree(dataset_dir(SMOKE, smoke_cache), dataset_dir(SMOKE, tmp_path))
    target = dataset_dir(SMOKE, tmp_path) / victim
    target.write_bytes(target.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=rf"{victim}.*corrupt or truncated.*--rebuild"):
        load_dataset(SMOKE, tmp_path)
    rebuilt = get_dataset(SMOKE, tmp_path, rebuild=True, progress=False)
    assert np.array_equal(rebuilt.train, load_dataset(SMOKE, smoke_cache).train)


def test_missing_cache_and_foreign_meta_are_refused(tmp_path, smoke_cache):
    with pytest.raises(DatasetError, match="ups data"):
        load_dataset(SMOKE, tmp_path)
    import shutil

    other = load_config(SMOKE_CONFIG, ["data.seed=3"]).data
    shutil.copytree(dataset_dir(SMOKE, smoke_cache), dataset_dir(other, tmp_path))
    # Same bytes (so checksums pass) under another config's folder: the id check catches it.
    with pytest.raises(DatasetError, match="another config"):
        load_dataset(other, tmp_path)


def test_concurrent_publish_keeps_the_first_copy(tmp_path, smoke_cache):
    import shutil

    shutil.copytree(dataset_dir(SMOKE, smoke_cache), dataset_dir(SMOKE, tmp_path))
    before = (dataset_dir(SMOKE, tmp_path) / META_FILE).read_text()
    time.sleep(0.01)
    build_dataset(SMOKE, tmp_path, progress=False)
    assert (dataset_dir(SMOKE, tmp_path) / META_FILE).read_text() == before
    assert load_dataset(SMOKE, tmp_path).meta == json.loads(before)
    assert [p.name for p in tmp_path.iterdir()] == [dataset_dir(SMOKE, tmp_path).name]
