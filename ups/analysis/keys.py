"""The one key schema the analysis reads: what the trainer, the evaluator and the W&B mirror
write. ``tests/analysis/test_keys.py`` trains a smoke run and checks every key named here is
present in what they wrote, so a renamed key breaks a test, not a report.

Local run folder (``ups/records.py``):

- ``history.jsonl`` rows: ``stage``, ``epoch`` and :data:`EPOCH_KEYS` (``ups/train/loop.py``),
  the stage's loss terms, and its validation metrics as ``val_<name>`` (always ``val_score``,
  lower is better, which selects the best epoch).
- ``metrics.json``: per stage :data:`STAGE_METRIC_KEYS` (``ups/pipeline.py``); per evaluated
  split ``eval/<split>`` with flat ``<mode>/<metric>`` keys (``ups/eval/evaluate.py``).

W&B mirror (``ups/session.py``, ``ups/eval/evaluate.py``): a training history row is logged as
``<stage>/<key>`` plus ``<stage>/epoch``; stage metrics are summary entries named by the stage;
an evaluation is its own W&B run (job type ``eval-<split>``, same group) whose summary holds the
flat eval keys. Keys starting with ``_`` are W&B's own.
"""

from __future__ import annotations

from typing import Any

from ups.metrics import SUITE_KEYS

STAGE, EPOCH = "stage", "epoch"
TRAIN_LOSS = "train_loss"
LR = "lr"
GRAD_NORM_MEAN = "grad_norm_mean"  # mean over the epoch's steps of the pre-clip gradient norm
GRAD_NORM_MAX = "grad_norm_max"
EPOCH_SECONDS = "epoch_seconds"
BEST_SO_FAR = "best_so_far"  # True where the epoch improved the validation score
VAL_PREFIX = "val_"
VAL_SCORE = "val_score"
VAL_LOSS = "val_loss"  # the training objective on the val split, not a physics metric
EPOCH_KEYS = (TRAIN_LOSS, LR, GRAD_NORM_MEAN, GRAD_NORM_MAX, EPOCH_SECONDS, BEST_SO_FAR, VAL_SCORE)

BEST_EPOCH, EPOCHS_RUN, STOPPED_EARLY = "best_epoch", "epochs_run", "stopped_early"
BEST_VAL, WALL_SECONDS = "best_val", "wall_seconds"
# Rows per optimiser step summed over the processes, and how many trained (torchrun).
GLOBAL_BATCH, WORLD_SIZE = "global_batch", "world_size"
STAGE_METRIC_KEYS = (
    BEST_EPOCH,
    BEST_VAL,
    EPOCHS_RUN,
    STOPPED_EARLY,
    WALL_SECONDS,
    GLOBAL_BATCH,
    WORLD_SIZE,
)

# Per-mode metrics of ups.metrics.rollout_metrics plus the timing evaluate adds.
EVAL_METRICS = (*SUITE_KEYS, "seconds_per_trajectory")
# Rollout modes in report order (``ups.eval.modes.MODES``; a test holds the two equal).
EVAL_MODES = (
    "persistence",
    "spectral_coarse",
    "fno",
    "operator",
    "corrected",
    "projection",
    "random",
    "ttc",
    "oracle",
)
TTC_IMPROVEMENT = "ttc/improvement_pct"  # percent, vs the corrected mode
TTC_SPEARMAN = "ttc/score_error_spearman"  # candidate reward vs minus its true error
TTC_KEYS = (
    TTC_IMPROVEMENT,
    "random/improvement_pct",
    "oracle/improvement_pct",
    "ttc/position_random_to_oracle",
    TTC_SPEARMAN,
)
# The stages whose loss is a denoising loss: a falling loss need not mean better physics.
DIFFUSION_STAGES = ("diffusion", "consistency")
# Eval metrics the comparison correlates with each stage's final training loss.
CORRELATED_METRICS = (
    "operator/nrmse",
    "corrected/nrmse",
    "corrected/conservation_gap",
    "ttc/nrmse",
    "ttc/conservation_gap",
    TTC_IMPROVEMENT,
)

WANDB_TRAIN_JOB = "train"
WANDB_EVAL_JOB_PREFIX = "eval-"
WANDB_INTERNAL_PREFIX = "_"


def eval_section(split: str) -> str:
    """metrics.json key of one evaluated split, e.g. ``eval/test``."""
    return f"eval/{split}"


def eval_splits(metrics: dict[str, Any]) -> list[str]:
    """The splits evaluated in a metrics.json, in sorted order."""
    return sorted(k.split("/", 1)[1] for k in metrics if k.startswith("eval/"))


def modes_in(evaluated: dict[str, Any]) -> list[str]:
    """The modes with an nRMSE in flat eval metrics: known ones in report order, then others."""
    found = {k.split("/")[0] for k in evaluated if k.endswith("/nrmse")}
    return [m for m in EVAL_MODES if m in found] + sorted(found - set(EVAL_MODES))


def mode_key(mode: str, metric: str) -> str:
    """Flat eval key, e.g. ``ttc/nrmse``."""
    return f"{mode}/{metric}"


def wandb_key(stage: str, key: str) -> str:
    """The W&B name of a history value: ``<stage>/<key>`` (``ups.session.RunSession.log``)."""
    return f"{stage}/{key}"
