"""Train the configured stages, in pipeline order, into one run folder.

``data -> autoencoder -> operator -> diffusion -> consistency``, plus the ``fno`` baseline,
which reads only the data. Each stage reads the frozen best checkpoints of the stages it
builds on and writes only its own. Re-running on an existing run
folder resumes: finished stages are skipped (their last checkpoint says so) and an interrupted
stage continues from its last epoch, bit for bit.

Under torchrun every process runs this function; they train one run together
(``ups/distributed.py``): rank 0 builds the dataset and the run folder, the others wait and
join, and the process group is destroyed when training ends.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from pathlib import Path

from ups import distributed
from ups.data.dataset import get_dataset
from ups.progress import EPOCH_LEGEND, say, stage_done, stage_header
from ups.schema import STAGE_SPECS, STAGES, UpsConfig
from ups.session import check_run_path, open_session
from ups.stages.context import StageContext
from ups.train.loop import fit


def stage_class(name: str) -> type:
    """The class that trains stage ``name``, as the registry ``ups.schema.STAGE_SPECS`` names it."""
    (spec,) = [spec for spec in STAGE_SPECS if spec.name == name]
    module, _, cls = spec.stage_class.partition(":")
    return getattr(importlib.import_module(module), cls)


def train(
    cfg: UpsConfig,
    run_dir: str | Path | None = None,
    stage: str | None = None,
    resume: bool = False,
    progress: bool = True,
) -> Path:
    """Train ``stage`` (or every stage in ``cfg.stages``) and return the run folder."""
    names = _stages_to_run(cfg, stage)
    world = distributed.world_from_env()
    with distributed.process_group(world, cfg.device) as device:
        if device != cfg.device:  # cuda -> this rank's cuda:LOCAL_RANK
            cfg = dataclasses.replace(cfg, device=device)
        return _train(cfg, run_dir, names, resume, progress and world.is_main, world)


def _train(cfg, run_dir, names, resume, progress, world) -> Path:
    if world.is_main:  # a bad run path is refused before the dataset is solved, not after
        check_run_path(Path(run_dir) if run_dir else Path(cfg.paths.runs), resume)
    # Rank 0 builds (or verifies) the cache first, so the ranks never generate it twice.
    dataset = (
        get_dataset(cfg.data, cfg.paths.data_cache, progress=progress) if world.is_main else None
    )
    distributed.barrier(world)
    if dataset is None:
        dataset = get_dataset(cfg.data, cfg.paths.data_cache, progress=False)
    with open_session(cfg, run_dir, resume=resume, world=world) as session:
        ctx = StageContext.from_dataset(cfg, dataset, session.record)
        if progress:
            say(f"run folder {session.record.path}\n{EPOCH_LEGEND}")
        run_start = time.perf_counter()
        for i, name in enumerate(names):
            if progress:
                epochs = getattr(cfg, name).train.epochs
                say(stage_header(i + 1, len(names), name, epochs, names[i + 1 :]))
            start = time.perf_counter()
            result = fit(stage_class(name)(ctx), session, progress=progress)
            now = time.perf_counter()
            if progress:
                say(stage_done(name, now - start, now - run_start, names[i + 1 :]))
            session.finish_metrics(
                {
                    name: {
                        "best_epoch": result.best_epoch,
                        "best_val": result.best_val,
                        "epochs_run": result.epochs_run,
                        "stopped_early": result.stopped_early,
                        "wall_seconds": round(now - start, 3),
                        # Every optimiser step sees this many rows, summed over the processes.
                        "global_batch": getattr(cfg, name).train.batch_size,
                        "world_size": world.size,
                    }
                }
            )
    return session.record.path


def _stages_to_run(cfg: UpsConfig, stage: str | None) -> list[str]:
    if stage is None:
        return [name for name in STAGES if name in cfg.stages]
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose from {STAGES}")
    return [stage]
