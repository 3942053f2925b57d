"""Data-parallel training: the torchrun environment, batch sharding, and a real 2-process gloo
run of the smoke config against a single process with the same global batch."""

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import SMOKE_CONFIG, train_smoke
from ups.distributed import (
    SINGLE,
    DistributedConfigError,
    World,
    check_batch,
    shard,
    world_from_env,
)
from ups.records import read_history

# Small enough for a test, long enough (42 optimiser steps) to amplify summation-order noise.
TINY = [
    "autoencoder.train.epochs=3",
    "operator.train.epochs=2",
    "diffusion.train.epochs=2",
    "consistency.train.epochs=1",
]
# Relative tolerance on the deterministic-loss stages' val metrics (autoencoder, operator).
# Not bitwise: DDP all-reduces each rank's float32 gradient of its half batch, a different
# summation order than one backward over the whole batch (~1e-7 relative per step), which
# training amplifies; measured 6e-7 to 7e-6 here, so 1e-4 leaves more than a decade of margin.
RTOL = 1e-4


def test_world_comes_from_torchrun_variables():
    assert world_from_env({}) == SINGLE
    world = world_from_env({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"})
    assert world == World(rank=2, size=4, local_rank=0) and world.active and not world.is_main
    with pytest.raises(DistributedConfigError, match="RANK=4 is outside WORLD_SIZE=4"):
        world_from_env({"WORLD_SIZE": "4", "RANK": "4"})
    with pytest.raises(DistributedConfigError, match="start data-parallel runs with torchrun"):
        world_from_env({"WORLD_SIZE": "2"})


def test_global_batch_must_split_evenly():
    check_batch(64, World(0, 4, 0), "x.batch_size")
    with pytest.raises(DistributedConfigError, match=r"diffusion.train.batch_size=63 .* 2 proc"):
        check_batch(63, World(0, 2, 0), "diffusion.train.batch_size")


def test_shards_cover_the_batch_and_weights_restore_its_mean():
    batch = (torch.arange(10.0), torch.arange(10.0) * 2)  # a last, uneven batch: 10 rows, 3 ranks
    shards = [shard(batch, World(r, 3, r)) for r in range(3)]
    assert torch.equal(torch.cat([s[0][0] for s in shards]), batch[0])
    assert torch.equal(torch.cat([s[0][1] for s in shards]), batch[1])
    # DDP averages over ranks: mean_r(weight_r * local mean_r) must be the global mean.
    ddp_mean = sum(w * part[0].mean() for part, w in shards) / 3
    assert float(ddp_mean) == pytest.approx(float(batch[0].mean()))
    assert shard(batch[0], SINGLE) == (batch[0], 1.0)
    with pytest.raises(DistributedConfigError, match="a batch of 2 rows cannot be split over 3"):
        shard(torch.zeros(2), World(0, 3, 0))


@pytest.mark.slow
def test_torchrun_two_cpu_processes_match_one_and_only_rank0_writes(smoke_cache, tmp_path):
    cwd = tmp_path / "cwd"  # any stray file a rank writes relative to its cwd lands here
    cwd.mkdir()
    args = [f"paths.data_cache={smoke_cache}", *TINY]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "ups",
        "train",
        str(SMOKE_CONFIG),
        *args,
        f"paths.runs={tmp_path / 'ddp'}",
        "tracking.wandb.mode=offline",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(cwd.iterdir()) == []

    (ddp,) = (tmp_path / "ddp").iterdir()  # one run folder, not one per rank
    single = train_smoke(tmp_path / "single", [*args, f"paths.runs={tmp_path / 'single'}"])
    names = {p.name for p in ddp.iterdir()}
    assert names == {p.name for p in single.iterdir()} | {"wandb"}
    ckpts = {p.name for p in (ddp / "checkpoints").iterdir()}
    assert ckpts == {p.name for p in (single / "checkpoints").iterdir()}
    assert len(list((ddp / "wandb" / "wandb").glob("offline-run-*"))) == 1
    rows = [(r["stage"], r["epoch"]) for r in read_history(ddp / "history.jsonl")]
    assert len(rows) == len(set(rows)) == 3 + 2 + 2 + 1  # logged once, by rank 0
    assert json.loads((ddp / "run.json").read_text())["world_size"] == 2

    got = json.loads((ddp / "metrics.json").read_text())
    want = json.loads((single / "metrics.json").read_text())
    for stage in ("autoencoder", "operator", "diffusion", "consistency"):
        assert got[stage]["world_size"] == 2 and got[stage]["global_batch"] == 64
        assert got[stage]["epochs_run"] == want[stage]["epochs_run"]
    for stage in ("autoencoder", "operator"):
        for key, value in want[stage]["best_val"].items():
            assert got[stage]["best_val"][key] == pytest.approx(value, rel=RTOL), (stage, key)
    # The noisy stages draw each rank's noise from its own stream: statistically, not
    # numerically, the single-process run; they must train to finite scores.
    for stage in ("diffusion", "consistency"):
        assert torch.isfinite(torch.tensor(got[stage]["best_val"]["score"]))
