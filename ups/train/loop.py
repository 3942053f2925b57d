"""The one training loop every stage uses, readable top to bottom.

A stage supplies its model, its batches, its loss terms and its validation; this loop owns
optimisation (AdamW, schedule, clipping, EMA), non-finite checks, history, physics-aware model
selection with patience, and checkpoints that resume bit for bit.

Under torchrun (``ups/distributed.py``) the same loop trains a DDP replica per process: each
rank takes its share of every global batch, validation runs on rank 0 and is broadcast, and
only rank 0 writes. Each rank draws its training noise from its own stream, re-seeded every
epoch from (seed, stage, rank, epoch), so a resumed data-parallel run continues exactly from
rank 0's checkpoint. One process keeps the single continuing stream of earlier versions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from ups import distributed
from ups.progress import bars, epoch_line, say
from ups.repro import torch_generator
from ups.schema import TrainConfig
from ups.session import RunSession
from ups.train import checkpoint
from ups.train.optim import EMA, build_optimizer, build_scheduler


class NonFiniteLossError(FloatingPointError):
    """A loss or gradient became NaN/inf; the message names stage, epoch and step."""


class Stage(Protocol):
    """What a pipeline stage gives the loop."""

    name: str
    train_cfg: TrainConfig
    model: nn.Module  # the trainable module; everything else the stage uses is frozen

    def steps_per_epoch(self) -> int: ...

    def batches(self, generator: torch.Generator) -> Iterable[Any]: ...

    def losses(self, batch: Any, generator: torch.Generator) -> dict[str, torch.Tensor]: ...

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Validation metrics of ``model``; must include ``score`` (lower is better)."""
        ...

    def extra_state(self) -> dict[str, Any]:
        """What downstream stages need beside the weights (saved in the best checkpoint)."""
        ...


@dataclass(frozen=True)
class FitResult:
    best_epoch: int
    best_val: dict[str, float]  # validation metrics of the selected checkpoint
    epochs_run: int
    stopped_early: bool


def fit(stage: Stage, session: RunSession, progress: bool = True) -> FitResult:
    """Train ``stage`` to completion (resuming from its last checkpoint if one exists)."""
    cfg, name, model = stage.train_cfg, stage.name, stage.model
    seed, device, world = session.cfg.seed, session.cfg.device, session.world
    distributed.check_batch(cfg.batch_size, world, f"{name}.train.batch_size")
    progress = progress and world.is_main
    parts, state = _start(stage, session)
    _, _, _, ema, generators = parts
    best_path = session.record.checkpoint_path(name)
    last_path = session.record.checkpoint_path(f"{name}.last")
    epoch = state["epoch"]
    stage.model = distributed.wrap(model, world, device)  # the stage's losses call the replica
    try:
        while epoch < cfg.epochs and not state["stopped_early"]:
            if world.active:
                stream = f"{name}/noise/rank{world.rank}/epoch{epoch}"
                generators["noise"] = torch_generator(seed, stream, device)
            row = _train_epoch(stage, *parts, epoch, world, progress)
            eval_model = ema.model if ema is not None else model
            # Rank 0 validates; every rank takes its numbers, so all stop at the same epoch.
            val = distributed.broadcast(
                stage.validate(eval_model) if world.is_main else None, world
            )
            _check_finite(torch.tensor(val["score"]), {}, name, epoch, "end", "validation score")
            improved = _select(stage, session, state, epoch, val, eval_model)
            epoch += 1
            stop = cfg.patience > 0 and state["bad_epochs"] >= cfg.patience
            state.update(epoch=epoch, stopped_early=stop)
            session.log(
                name,
                epoch - 1,
                **row,
                **{f"val_{k}": v for k, v in val.items()},
                best_so_far=improved,
            )
            if session.writes:
                _save_last(last_path, name, state, parts, session)
            if progress:
                _say_epoch(name, epoch, cfg, row, val["score"], improved, stop)
    finally:
        stage.model = model

    distributed.barrier(world)  # rank 0's best checkpoint is on disk before anyone reads it
    best = checkpoint.load(best_path, session.cfg, expect=name)
    model.load_state_dict(best["model"])
    return FitResult(state["best_epoch"], dict(best["val"]), epoch, state["stopped_early"])


def _start(stage: Stage, session: RunSession) -> tuple[tuple, dict[str, Any]]:
    """``(model, optimizer, scheduler, ema, generators)`` of ``stage`` and its loop state:
    fresh, or continued from its last checkpoint."""
    cfg, name, model = stage.train_cfg, stage.name, stage.model
    seed, device = session.cfg.seed, session.cfg.device
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, cfg.epochs * stage.steps_per_epoch())
    ema = EMA(model, cfg.ema_decay) if cfg.ema else None
    generators = {
        "loader": torch_generator(seed, f"{name}/loader"),  # the same permutation on every rank
        "noise": torch_generator(seed, f"{name}/noise", device),
    }
    last_path = session.record.checkpoint_path(f"{name}.last")
    state = {
        "epoch": 0,
        "best_score": math.inf,
        "best_epoch": -1,
        "bad_epochs": 0,
        "stopped_early": False,
    }
    if last_path.is_file():
        state = _resume(last_path, name, session, model, optimizer, scheduler, ema, generators)
    # Rows logged after the checkpoint we start from (a kill between the two writes) go, so a
    # resumed run's history equals an uninterrupted one's.
    if session.writes:
        session.record.truncate_history(name, from_epoch=state["epoch"])
    return (model, optimizer, scheduler, ema, generators), state


def _select(stage, session, state, epoch, val, eval_model) -> bool:
    """Keep this epoch as the stage's best if its val score is the lowest so far, else count it
    against patience; whether it was kept."""
    improved = val["score"] < state["best_score"]
    if improved:
        state.update(best_score=val["score"], best_epoch=epoch, bad_epochs=0)
        if session.writes:
            path = session.record.checkpoint_path(stage.name)
            _save_best(path, stage, eval_model, epoch, val, session)
    else:
        state["bad_epochs"] += 1
    return improved


def _say_epoch(name, epoch, cfg, row, score, improved, stopped) -> None:
    eta = 0.0 if stopped else row["epoch_seconds"] * (cfg.epochs - epoch)  # seconds
    say(epoch_line(name, epoch, cfg.epochs, row["train_loss"], score, improved, eta))
    if stopped:
        say(f"[{name}] stopped early: no better val score in {cfg.patience} epochs")


def _train_epoch(stage, model, optimizer, scheduler, ema, generators, epoch, world, progress):
    """One pass over the stage's batches (this rank's share of each); the epoch's history row
    with losses averaged over the global batch."""
    model.train()
    start = time.perf_counter()
    sums: dict[str, float] = {}
    grad_norms = []
    batches = tqdm(
        stage.batches(generators["loader"]),
        total=stage.steps_per_epoch(),
        desc=f"{stage.name} epoch {epoch + 1}",
        leave=False,
        disable=not bars(progress),
    )
    for step, global_batch in enumerate(batches):
        batch, weight = distributed.shard(global_batch, world)
        terms = stage.losses(batch, generators["noise"])
        loss = sum(terms.values())
        # Global-batch means of the loss and its terms (each rank's mean weighted by its share).
        local = torch.stack([loss, *terms.values()]).detach()
        reduced = distributed.all_reduce_sum(local * (weight / world.size), world)
        values = dict(zip(["train_loss", *terms], reduced, strict=True))
        _check_finite(values["train_loss"], terms, stage.name, epoch, step, "loss")
        optimizer.zero_grad(set_to_none=True)
        (loss * weight if world.active else loss).backward()  # DDP averages over the ranks
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), stage.train_cfg.grad_clip)
        _check_finite(norm, terms, stage.name, epoch, step, "gradient norm")
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update(model)
        grad_norms.append(float(norm))
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + float(value)
        batches.set_postfix(loss=f"{float(values['train_loss']):.4g}")
    steps = max(1, len(grad_norms))
    return {
        **{key: total / steps for key, total in sums.items()},
        "lr": optimizer.param_groups[0]["lr"],
        "grad_norm_mean": sum(grad_norms) / steps,
        "grad_norm_max": max(grad_norms, default=0.0),
        "epoch_seconds": time.perf_counter() - start,
    }


def _save_best(path, stage, eval_model, epoch, val, session) -> None:
    """The selected weights (EMA if on) with their val metrics and what downstream needs."""
    payload = {
        "stage": stage.name,
        "epoch": epoch,
        "model": eval_model.state_dict(),
        "val": val,
        **stage.extra_state(),
    }
    checkpoint.save(path, payload, session.cfg)


def _save_last(path, name, state, parts, session) -> None:
    """Everything a bit-exact resume needs: weights, optimiser, schedule, EMA, RNG, position."""
    model, optimizer, scheduler, ema, generators = parts
    payload = {
        "stage": name,
        "state": state,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "rng": checkpoint.rng_state(generators),
    }
    checkpoint.save(path, payload, session.cfg)


def _check_finite(value, terms, stage, epoch, step, what) -> None:
    if not torch.isfinite(value).all():
        detail = {k: float(v.detach()) for k, v in terms.items()}
        raise NonFiniteLossError(
            f"stage '{stage}': non-finite {what} at epoch {epoch}, step {step} (terms {detail}); "
            "training stopped, the last good checkpoint is left as it was"
        )


def _resume(path, name, session, model, optimizer, scheduler, ema, generators) -> dict:
    payload = checkpoint.load(path, session.cfg, expect=name)
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    if ema is not None:
        ema.load_state_dict(payload["ema"])
    checkpoint.restore_rng_state(payload["rng"], generators)
    return dict(payload["state"])
