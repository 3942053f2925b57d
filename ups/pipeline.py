"""Train the configured stages, in pipeline order, into one run folder.

``data -> autoencoder -> operator -> diffusion -> consistency``, plus the ``fno`` baseline,
which reads only the data. Each stage reads the frozen best checkpoints of the stages it
builds on and writes only its own. Re-running on an existing run
folder resumes: finished stages are skipped (their last checkpoint says so) and an interrupted
stage continues from its last epoch, bit for bit.
"""

from __future__ import annotations

import time
from pathlib import Path

from ups.data.dataset import get_dataset
from ups.schema import STAGES, UpsConfig
from ups.session import open_session
from ups.stages.autoencoder import AutoencoderStage
from ups.stages.consistency import ConsistencyStage
from ups.stages.context import StageContext
from ups.stages.diffusion import DiffusionStage
from ups.stages.fno import FnoStage
from ups.stages.operator import OperatorStage
from ups.train.loop import fit

STAGE_CLASSES = {
    "autoencoder": AutoencoderStage,
    "operator": OperatorStage,
    "diffusion": DiffusionStage,
    "consistency": ConsistencyStage,
    "fno": FnoStage,
}


def train(
    cfg: UpsConfig,
    run_dir: str | Path | None = None,
    stage: str | None = None,
    resume: bool = False,
    progress: bool = True,
) -> Path:
    """Train ``stage`` (or every stage in ``cfg.stages``) and return the run folder."""
    names = _stages_to_run(cfg, stage)
    dataset = get_dataset(cfg.data, cfg.paths.data_cache, progress=progress)
    with open_session(cfg, run_dir, resume=resume) as session:
        ctx = StageContext.from_dataset(cfg, dataset, session.record)
        for name in names:
            start = time.perf_counter()
            result = fit(STAGE_CLASSES[name](ctx), session, progress=progress)
            session.finish_metrics(
                {
                    name: {
                        "best_epoch": result.best_epoch,
                        "best_val": result.best_val,
                        "epochs_run": result.epochs_run,
                        "stopped_early": result.stopped_early,
                        "wall_seconds": round(time.perf_counter() - start, 3),
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
