"""Normalisation of the physical field u, fitted on the train split only."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Normalizer:
    """Scalar affine map ``(u - mean) / std``; one field, so one mean and one std."""

    mean: float
    std: float

    @classmethod
    def fit(cls, train: np.ndarray) -> Normalizer:
        """Statistics of the train split (any shape, physical units)."""
        std = float(np.std(train))
        if not np.isfinite(std) or std <= 0:
            raise ValueError(f"cannot normalise: train std is {std}")
        return cls(mean=float(np.mean(train)), std=std)

    def transform(self, u: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        return (u - self.mean) / self.std

    def inverse(self, v: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        return v * self.std + self.mean

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> Normalizer:
        return cls(mean=float(data["mean"]), std=float(data["std"]))
