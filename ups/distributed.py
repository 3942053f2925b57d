"""Data-parallel training across processes with PyTorch's own engine (torchrun + DDP).

``torchrun --nproc_per_node N -m ups train CONFIG`` starts N processes whose ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` environment variables :func:`world_from_env` reads. Each
process trains a replica wrapped in :class:`DistributedModel`; gradients are all-reduced by
DDP (gloo on CPU, nccl on CUDA with ``cuda:LOCAL_RANK``).

Global batch: the config's ``batch_size`` stays the global batch. Every rank walks the same
seeded permutation (the stage's loader generator is shared), and :func:`shard` gives rank r its
contiguous share of each global batch, ``batch_size / world_size`` rows (a DistributedSampler
equivalent seeded from the run seed and advanced per epoch). :func:`shard_weight` scales each
rank's mean loss by its share so that DDP's gradient average equals the gradient of the global
batch mean, also for a smaller last batch.

Only rank 0 writes (records, checkpoints, history, W&B); validation runs on rank 0 and its
metrics are broadcast, so every rank takes the same selection and early-stopping decisions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


class DistributedConfigError(ValueError):
    """The torchrun environment or the batch does not fit data-parallel training."""


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes and reports."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


SINGLE = World()


def world_from_env(env: dict[str, str] | None = None) -> World:
    """The :class:`World` torchrun describes in ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env:
        return SINGLE
    try:
        world = World(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
    except (KeyError, ValueError) as err:
        raise DistributedConfigError(
            f"WORLD_SIZE is set but RANK/LOCAL_RANK are missing or not integers ({err}); "
            "start data-parallel runs with torchrun"
        ) from err
    if not 0 <= world.rank < world.size:
        raise DistributedConfigError(f"RANK={world.rank} is outside WORLD_SIZE={world.size}")
    return world


def check_batch(batch_size: int, world: World, key: str) -> None:
    """The global batch must split evenly over the ranks."""
    if batch_size % world.size:
        raise DistributedConfigError(
            f"{key}={batch_size} is the global batch and must be divisible by the "
            f"{world.size} processes (each rank takes batch_size / world_size rows)"
        )


@contextmanager
def process_group(world: World, device: str) -> Iterator[str]:
    """Join the process group for the block (no-op for one process); yields this rank's device:
    ``cuda:LOCAL_RANK`` (nccl) when ``device`` is CUDA, else ``cpu`` (gloo)."""
    if not world.active:
        yield device
        return
    if device.startswith("cuda"):
        device, backend = f"cuda:{world.local_rank}", "nccl"
        torch.cuda.set_device(torch.device(device))
    else:
        backend = "gloo"
    dist.init_process_group(backend, rank=world.rank, world_size=world.size)
    try:
        yield device
    finally:
        dist.destroy_process_group()


def broadcast(obj: Any, world: World) -> Any:
    """Rank 0's ``obj`` on every rank (picklable objects)."""
    if not world.active:
        return obj
    box = [obj if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world: World) -> None:
    """Wait until every rank gets here (e.g. until rank 0 has written a checkpoint)."""
    if world.active:
        dist.barrier()


def all_reduce_sum(values: torch.Tensor, world: World) -> torch.Tensor:
    """Elementwise sum of ``values`` over the ranks (a copy; ``values`` is untouched)."""
    out = values.detach().clone()
    if world.active:
        dist.all_reduce(out)
    return out


def shard(batch: Any, world: World) -> tuple[Any, float]:
    """Rank's contiguous share of a global batch (a tensor or a tuple of tensors, rows first)
    and the loss weight :func:`shard_weight` gives it."""
    if not world.active:
        return batch, 1.0
    parts = batch if isinstance(batch, (tuple, list)) else (batch,)
    rows = len(parts[0])
    if rows < world.size:
        raise DistributedConfigError(
            f"a batch of {rows} rows cannot be split over {world.size} processes; "
            "lower the number of processes or change the batch size"
        )
    local = tuple(t.tensor_split(world.size)[world.rank] for t in parts)
    out = local if isinstance(batch, (tuple, list)) else local[0]
    return out, shard_weight(len(local[0]), rows, world.size)


def shard_weight(local_rows: int, global_rows: int, world_size: int) -> float:
    """``local_rows * world_size / global_rows``: DDP averages gradients over ranks, so this
    weight on each rank's mean loss makes the average the gradient of the global mean."""
    return local_rows * world_size / global_rows


class DistributedModel(DistributedDataParallel):
    """DDP whose other attributes (``cfg``, ``sigma_data``, ...) resolve on the wrapped model,
    so a stage's loss code runs unchanged on the replica or the plain model."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def wrap(model: torch.nn.Module, world: World, device: str) -> torch.nn.Module:
    """``model`` itself for one process, else its DDP replica (synchronised gradients)."""
    if not world.active:
        return model
    device_ids = [torch.device(device).index] if device.startswith("cuda") else None
    return DistributedModel(model, device_ids=device_ids)
