"""What every stage shares: normalised data tensors, conditioning, batching, frozen loading."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ups.data.dataset import BurgersDataset
from ups.data.normalize import Normalizer
from ups.repro import torch_generator
from ups.schema import UpsConfig


@dataclass
class StageContext:
    """Normalised float32 trajectories on the run's device plus the physics they came from."""

    cfg: UpsConfig
    dataset: BurgersDataset
    normalizer: Normalizer
    train: torch.Tensor  # (N_train, T, X), normalised
    val: torch.Tensor  # (N_val, T, X), normalised

    @classmethod
    def from_dataset(cls, cfg: UpsConfig, dataset: BurgersDataset) -> StageContext:
        norm = dataset.normalizer  # fitted on train only, at generation time

        def prepare(u):
            return torch.as_tensor(norm.transform(u), dtype=torch.float32, device=cfg.device)

        return cls(cfg, dataset, norm, prepare(dataset.train), prepare(dataset.val))

    @property
    def device(self) -> torch.device:
        return torch.device(self.cfg.device)

    def cond(self, batch: int) -> torch.Tensor:
        """(batch, 2) physical conditioning (dt between stored frames, nu) of this dataset."""
        values = torch.tensor([self.dataset.dt, self.dataset.nu], dtype=torch.float32)
        return values.to(self.device).expand(batch, 2)

    def init_generator(self, stage: str) -> torch.Generator:
        """The generator a stage's model is initialised from (CPU: models materialise there)."""
        return torch_generator(self.cfg.seed, f"{stage}/init")


def index_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """A seeded shuffle of ``range(n)`` cut into batches (the last one may be smaller)."""
    order = torch.randperm(n, generator=generator)
    yield from order.split(batch_size)


def n_batches(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode and no gradients: a stage never trains what an earlier stage produced."""
    return module.eval().requires_grad_(False)
