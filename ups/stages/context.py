"""What every stage shares: normalised data, conditioning, batching, frozen upstream models,
and the validation rollout metrics in physical units."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ups.data.dataset import BurgersDataset
from ups.data.normalize import Normalizer
from ups.metrics import conservation_gap, nrmse
from ups.records import RunRecord
from ups.repro import torch_generator
from ups.rollout import Corrector, rollout
from ups.schema import UpsConfig
from ups.train import checkpoint

ENCODE_CHUNK = 4096  # frames per encoder call when encoding a whole split
MIN_FRAME_POWER = 1e-6  # floor of a frame's mean square (in std^2) in relative loss weights


class MissingUpstreamError(FileNotFoundError):
    """A stage needs the checkpoint of an earlier stage that has not been trained."""


class UnfinishedUpstreamError(MissingUpstreamError):
    """An earlier stage's checkpoint exists but its training was cut short."""


@dataclass
class StageContext:
    """Normalised float32 trajectories on the run's device plus the physics they came from."""

    cfg: UpsConfig
    dataset: BurgersDataset
    normalizer: Normalizer
    record: RunRecord
    train: torch.Tensor  # (N_train, T, X), normalised
    val: torch.Tensor  # (N_val, T, X), normalised

    @classmethod
    def from_dataset(
        cls, cfg: UpsConfig, dataset: BurgersDataset, record: RunRecord
    ) -> StageContext:
        norm = dataset.normalizer  # fitted on train only, at generation time

        def prepare(u):
            return to_model(norm, u, cfg.device)

        return cls(cfg, dataset, norm, record, prepare(dataset.train), prepare(dataset.val))

    def to_model(self, u: np.ndarray) -> torch.Tensor:
        """Physical numpy array -> normalised float32 tensor on the run's device."""
        return to_model(self.normalizer, u, self.cfg.device)

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

    def latent_model(self, cls: type[nn.Module], model_cfg: object, stage: str) -> nn.Module:
        """``cls(model_cfg, tokens, latent_dim, generator=...)`` on the run's device: every model
        that works on the autoencoder's latent tokens is built this way."""
        ae = self.cfg.autoencoder.model
        model = cls(
            model_cfg, ae.latent_tokens, ae.latent_dim, generator=self.init_generator(stage)
        )
        return model.to(self.device)

    def generator(self, stream: str) -> torch.Generator:
        """A fresh generator on the run's device for the named stream."""
        return torch_generator(self.cfg.seed, stream, self.device)

    def load_frozen(self, stage: str, build: Callable[[], nn.Module]) -> nn.Module:
        """``build()`` an upstream model, load its best checkpoint and freeze it."""
        path = self.record.checkpoint_path(stage)
        if not path.is_file():
            raise MissingUpstreamError(
                f"{path} is missing: train the '{stage}' stage of this run first "
                f"(ups train --resume {self.record.path} --stage {stage})"
            )
        require_finished(self.record, self.cfg, stage)
        model = build()
        model.load_state_dict(checkpoint.load(path, self.cfg, expect=stage)["model"])
        return freeze(model.to(self.device))

    @torch.no_grad()
    def encode(self, autoencoder: nn.Module, u: torch.Tensor) -> torch.Tensor:
        """Latents of every frame of ``u`` (N, T, X) -> (N, T, tokens, D), in chunks."""
        frames = u.flatten(0, 1)
        z = torch.cat([autoencoder.encode(c) for c in frames.split(ENCODE_CHUNK)])
        return z.unflatten(0, u.shape[:2])

    def val_rollout(
        self, autoencoder: nn.Module, operator: nn.Module, corrector: Corrector | None = None
    ) -> dict[str, float]:
        """Autoregressive val rollout from frame 0; physical nRMSE and conservation gap (%)."""
        steps = self.val.shape[1] - 1
        pred = rollout(
            autoencoder, operator, self.val[:, 0], self.cond(len(self.val)), steps, corrector
        )
        return val_rollout_metrics(self.physical(pred), self.physical(self.val))

    def frame_weights(self, u_true: torch.Tensor, loss_scale: str) -> torch.Tensor | None:
        """Per-frame loss weights for true normalised frames (..., X) -> (...), or None for the
        plain MSE (``loss_scale: absolute``).

        ``relative``: ``std^2 / mean_x(u_phys^2)``, so a weighted squared error of normalised
        frames is the squared relative error in physical units (the metric's nRMSE, squared).
        """
        if loss_scale == "absolute":
            return None
        norm = self.normalizer
        power = (norm.inverse(u_true) ** 2).mean(dim=-1)
        return norm.std**2 / power.clamp_min(MIN_FRAME_POWER * norm.std**2)

    def physical(self, u: torch.Tensor) -> np.ndarray:
        """Normalised tensor -> float64 numpy array in physical units."""
        return self.normalizer.inverse(u.detach().double().cpu().numpy())


def require_finished(record: RunRecord, cfg: UpsConfig, stage: str) -> None:
    """Refuse to read ``stage``'s best checkpoint unless its training ended: its last
    checkpoint (what every version writes after each epoch) is at the final epoch or stopped
    early. A best checkpoint of a killed stage is only the best of the epochs it got to."""
    last = record.checkpoint_path(f"{stage}.last")
    resume = f"resume it first: ups train --resume {record.path} --stage {stage}"
    if not last.is_file():
        raise UnfinishedUpstreamError(
            f"the '{stage}' stage of {record.path} is unfinished ({last} is missing); {resume}"
        )
    state = checkpoint.load(last, cfg, expect=stage)["state"]
    epochs = getattr(cfg, stage).train.epochs
    if state["epoch"] < epochs and not state["stopped_early"]:
        raise UnfinishedUpstreamError(
            f"the '{stage}' stage of {record.path} is unfinished (epoch {state['epoch']} of "
            f"{epochs}); {resume}"
        )


def val_rollout_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """nRMSE and conservation gap of predicted frames (B, S, X) against true frames (B, S+1, X)
    whose frame 0 was given (and is excluded from the metrics)."""
    return {
        "rollout_nrmse": nrmse(pred, true[:, 1:]),
        "conservation_gap": float(conservation_gap(pred, true[:, 0])),
    }


def weighted_mse(pred: torch.Tensor, true: torch.Tensor, weights: torch.Tensor | None):
    """Mean squared error of ``pred`` and ``true`` (*S, *F); with ``weights`` (*S,) each
    sample's mean over its feature dims F is weighted first."""
    if weights is None:
        return F.mse_loss(pred, true)
    per_sample = ((pred - true) ** 2).flatten(weights.dim()).mean(dim=-1)
    return (weights * per_sample).mean()


def to_model(norm: Normalizer, u: np.ndarray, device: str) -> torch.Tensor:
    """Normalise physical ``u`` into a float32 tensor on ``device`` (what the models see)."""
    return torch.as_tensor(norm.transform(u), dtype=torch.float32, device=device)


def index_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """A seeded shuffle of ``range(n)`` cut into batches (the last one may be smaller)."""
    order = torch.randperm(n, generator=generator)
    yield from order.split(batch_size)


def n_batches(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


def rollout_windows(u: torch.Tensor, horizon: int, stage: str) -> torch.Tensor:
    """Every (trajectory, start frame) pair of trajectories ``u`` (N, T, ...) whose window of
    ``horizon + 1`` frames fits: (N * (T - horizon), 2)."""
    frames = u.shape[1]
    if horizon > frames - 1:
        raise ValueError(f"{stage}.rollout_horizon={horizon} exceeds the {frames - 1} steps stored")
    return torch.cartesian_prod(torch.arange(len(u)), torch.arange(frames - horizon))


def window_batches(
    windows: torch.Tensor, horizon: int, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Seeded batches of :func:`rollout_windows` as index pairs (traj (B, 1), frames (B, H+1)):
    ``u[traj, frames]`` is (B, H+1, ...), each row one window."""
    ahead = torch.arange(horizon + 1)
    for index in index_batches(len(windows), batch_size, generator):
        traj, start = windows[index].unbind(1)
        yield traj[:, None], start[:, None] + ahead


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode and no gradients: a stage never trains what an earlier stage produced."""
    return module.eval().requires_grad_(False)
