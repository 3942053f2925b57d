"""The typed config schema: one frozen dataclass per section.

Defaults are the golden CPU setting. Derived values (``dt``, ``eps``) are properties so that
they have exactly one home. Range checks live in each section's ``validate``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ups.checks import InvalidValue, require
from ups.models.configs import (
    LINEAR_KINDS,
    AutoencoderConfig,
    DiffusionConfig,
    FNOConfig,
    OperatorConfig,
)

WANDB_MODES = ("disabled", "offline", "online")


@dataclass(frozen=True)
class DataConfig:
    """Burgers dataset: PDEBench convention, ``u_t + (u^2/2)_x = (nu/pi) u_xx`` on x in [0, 1)."""

    nu: float = 0.01
    fine_points: int = 1024  # grid the reference solver runs on
    points: int = 128  # stored grid (cell averages of the fine grid)
    frames: int = 41  # stored frames, t = 0 .. t_final inclusive
    t_final: float = 2.0
    n_train: int = 1024
    n_val: int = 128
    n_test: int = 256
    seed: int = 0  # dataset identity; kept apart from the run seed so seeds share one benchmark
    solver_dt_max: float = 1.0e-3
    solver_cfl: float = 1.0
    solver_chunk: int = 128  # trajectories per solver batch (the adaptive step uses the batch max)

    @property
    def dt(self) -> float:
        """Time between stored frames."""
        return self.t_final / (self.frames - 1)

    @property
    def eps(self) -> float:
        """Diffusion coefficient of the PDE, nu / pi."""
        return self.nu / math.pi

    @property
    def n_total(self) -> int:
        return self.n_train + self.n_val + self.n_test

    def validate(self) -> None:
        require(self.nu > 0, "nu", f"must be > 0, got {self.nu}")
        require(self.points >= 8, "points", f"must be >= 8, got {self.points}")
        require(
            self.fine_points >= self.points and self.fine_points % self.points == 0,
            "fine_points",
            f"must be a multiple of points={self.points}, got {self.fine_points}",
        )
        require(self.frames >= 2, "frames", f"must be >= 2, got {self.frames}")
        require(self.t_final > 0, "t_final", f"must be > 0, got {self.t_final}")
        for split in ("n_train", "n_val", "n_test"):
            require(getattr(self, split) >= 1, split, f"must be >= 1, got {getattr(self, split)}")
        require(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
        require(self.solver_dt_max > 0, "solver_dt_max", f"must be > 0, got {self.solver_dt_max}")
        require(0 < self.solver_cfl <= 1, "solver_cfl", f"must be in (0, 1], got {self.solver_cfl}")
        require(self.solver_chunk >= 1, "solver_chunk", f"must be >= 1, got {self.solver_chunk}")


SCHEDULES = ("cosine", "onecycle", "constant")


@dataclass(frozen=True)
class TrainConfig:
    """How one stage is optimised: AdamW + schedule + clipping + optional EMA + early stopping."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1.0e-3
    weight_decay: float = 1.0e-4
    beta1: float = 0.9
    beta2: float = 0.99
    schedule: str = "cosine"
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    grad_clip: float = 1.0
    ema: bool = False
    ema_decay: float = 0.999
    patience: int = 0  # epochs without a better validation score before stopping; 0 = never

    def validate(self) -> None:
        require(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        require(0 <= self.beta1 < 1, "beta1", f"must be in [0, 1), got {self.beta1}")
        require(0 <= self.beta2 < 1, "beta2", f"must be in [0, 1), got {self.beta2}")
        require(self.schedule in SCHEDULES, "schedule", f"must be one of {SCHEDULES}")
        require(self.warmup_steps >= 0, "warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        require(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "must be in [0, 1]")
        require(self.grad_clip > 0, "grad_clip", f"must be > 0, got {self.grad_clip}")
        require(0 < self.ema_decay < 1, "ema_decay", f"must be in (0, 1), got {self.ema_decay}")
        require(self.patience >= 0, "patience", f"must be >= 0, got {self.patience}")


@dataclass(frozen=True)
class StageSpec:
    """One training stage: its name (also its config section), the sections its trained weights
    depend on (its own last), and where its class lives (``module:Class``, imported by the
    pipeline so that this module needs no torch)."""

    name: str
    reads: tuple[str, ...]
    stage_class: str
    default: bool = True  # in the schema's default ``stages``


# The one registry of stages, in pipeline order; the stage list, the stage hash inputs and the
# pipeline's classes are derived from it. A stage reads the frozen checkpoints of the stages in
# its ``reads`` and nothing else (tests/test_schema.py checks the stage modules against it).
STAGE_SPECS = (
    StageSpec("autoencoder", ("autoencoder",), "ups.stages.autoencoder:AutoencoderStage"),
    StageSpec("operator", ("autoencoder", "operator"), "ups.stages.operator:OperatorStage"),
    StageSpec(
        "diffusion",
        ("autoencoder", "operator", "diffusion"),
        "ups.stages.diffusion:DiffusionStage",
    ),
    StageSpec(
        "consistency",
        ("autoencoder", "operator", "diffusion", "consistency"),
        "ups.stages.consistency:ConsistencyStage",
    ),
    # The FNO baseline reads only the data; opt-in (configs/burgers_golden_fno.yaml).
    StageSpec("fno", ("fno",), "ups.stages.fno:FnoStage", default=False),
)
STAGES = tuple(spec.name for spec in STAGE_SPECS)
STAGE_INPUTS = {spec.name: spec.reads for spec in STAGE_SPECS}


@dataclass(frozen=True)
class AutoencoderStageConfig:
    model: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=20, batch_size=256))


LOSS_SCALES = ("absolute", "relative", "amplitude")


@dataclass(frozen=True)
class RolloutLossConfig:
    """The training diet shared by the two time steppers (latent operator and FNO baseline):
    windows unrolled ``rollout_horizon`` steps, a one-step and a rollout (steps 2..horizon) loss.

    ``loss_scale``: ``absolute`` is the MSE of normalised frames; ``relative`` divides each
    frame's squared error by the true frame's mean square in physical units, i.e. the square
    of the metric's per-frame nRMSE, so decayed late frames count as much as early ones;
    ``amplitude`` (operator only, with a per-sample or capped ``model.amplitude``) divides it by
    the square of the unit the operator steps the true frame in (ups/models/amplitude.py).
    """

    rollout_horizon: int = 4  # steps unrolled per training window (1 = one-step loss only)
    unroll_gradient: bool = True  # backpropagate through the unroll (else detach between steps)
    one_step_weight: float = 1.0
    rollout_weight: float = 1.0  # weight of steps 2..horizon of the unroll
    loss_scale: str = "absolute"

    def validate(self) -> None:
        require(self.rollout_horizon >= 1, "rollout_horizon", "must be >= 1")
        require(self.one_step_weight > 0, "one_step_weight", "must be > 0")
        require(self.rollout_weight >= 0, "rollout_weight", "must be >= 0")
        require(self.loss_scale in LOSS_SCALES, "loss_scale", f"must be one of {LOSS_SCALES}")


@dataclass(frozen=True)
class OperatorStageConfig(RolloutLossConfig):
    """The latent operator: the rollout losses in latent and/or decoded space."""

    model: OperatorConfig = field(default_factory=OperatorConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=20, batch_size=128))
    latent_weight: float = 1.0  # MSE against the encoded true frames
    decoded_weight: float = 1.0  # MSE of the decoded prediction against the true grid frames
    # Each training window under a random exact symmetry of periodic Burgers (a shift by any
    # whole number of grid points, and u(x) -> -u(-x) with probability 1/2): ups/data/augment.py.
    augment: bool = False
    # Independently initialised operators trained side by side, each on its own draw of windows;
    # the run steps with their mean (ups/models/ensemble.py). 1 = a single operator.
    members: int = 1
    # Every step keeps the decoded field's grid mean (its mass) exactly, as periodic Burgers
    # does: ups/models/conservation.py. Needs the patch autoencoder.
    conserve_mass: bool = False

    def validate(self) -> None:
        super().validate()
        require(self.members >= 1, "members", f"must be >= 1, got {self.members}")
        for key in ("latent_weight", "decoded_weight"):
            require(getattr(self, key) >= 0, key, f"must be >= 0, got {getattr(self, key)}")
        require(
            self.latent_weight + self.decoded_weight > 0,
            "latent_weight",
            "latent_weight and decoded_weight cannot both be 0",
        )
        require(
            self.loss_scale != "amplitude" or self.model.amplitude != "fixed",
            "loss_scale",
            "amplitude needs operator.model.amplitude per_sample or capped",
        )


def _validate_gap_weight(gap_weight: float) -> None:
    require(gap_weight >= 0, "gap_weight", f"must be >= 0, got {gap_weight}")


@dataclass(frozen=True)
class DiffusionStageConfig:
    """The diffusion residual teacher; selected on val rollouts (nRMSE and conservation gap)."""

    model: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=10, batch_size=256))
    gap_weight: float = 1.0  # score = val nRMSE + gap_weight * val conservation gap / 100
    # Temperature of the val rollouts that select the teacher; the 'corrected' mode corrects at
    # it too unless eval.noise_scale says otherwise, so selection and use agree.
    val_noise_scale: float = 1.0

    def validate(self) -> None:
        _validate_gap_weight(self.gap_weight)
        require(
            self.val_noise_scale >= 0,
            "val_noise_scale",
            f"must be >= 0, got {self.val_noise_scale}",
        )


@dataclass(frozen=True)
class ConsistencyStageConfig:
    """Consistency distillation of the teacher; the student has the teacher's architecture."""

    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=10, batch_size=256))
    teacher_steps: int = 18  # N of the Karras grid the teacher's Heun steps walk in distillation
    student_steps: int = 1  # sampling steps of the student: 1 or 2
    huber_c: float = 0.0  # > 0: pseudo-Huber distance instead of squared error
    gap_weight: float = 1.0  # score = val nRMSE + gap_weight * val conservation gap / 100

    def validate(self) -> None:
        require(self.teacher_steps >= 2, "teacher_steps", f"must be >= 2, got {self.teacher_steps}")
        require(
            self.student_steps in (1, 2),
            "student_steps",
            f"the student samples in 1 or 2 steps, got {self.student_steps}",
        )
        require(self.huber_c >= 0, "huber_c", f"must be >= 0, got {self.huber_c}")
        _validate_gap_weight(self.gap_weight)


@dataclass(frozen=True)
class FnoStageConfig(RolloutLossConfig):
    """The classic baseline: FNO-1D on the grid, the rollout losses in grid space."""

    model: FNOConfig = field(default_factory=FNOConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=20, batch_size=128))

    def validate(self) -> None:
        super().validate()
        require(self.loss_scale != "amplitude", "loss_scale", "amplitude is for the operator")


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the TTC physics rewards (docs/design.md, "Evaluation and TTC"); each <= 0."""

    mass: float = 0.0  # weak for periodic Burgers: the projection guard enforces it exactly
    energy: float = 1.0
    tv: float = 1.0
    max_principle: float = 1.0
    pde_residual: float = 1.0
    solver_step: float = 0.0  # one reference-solver step from the previous state (no data)
    fine_step: float = 0.0  # the same on the data's fine grid: the exact continuation of it

    def validate(self) -> None:
        for key, value in vars(self).items():
            require(value >= 0, key, f"must be >= 0, got {value}")
        require(any(vars(self).values()), "pde_residual", "at least one weight must be > 0")


LOOKAHEADS = ("chain", "anchored")


@dataclass(frozen=True)
class TTCConfig:
    """Test-time conditioning: K sampled candidates per beam and step, reward beam search."""

    enabled: bool = True
    candidates: int = 8  # K: corrector samples per beam and step
    beam_width: int = 1  # W: beams kept per trajectory
    horizon: int = 1  # H: steps scored per candidate (1 + H-1 operator-only lookahead steps)
    # How a lookahead step is scored: "chain" from the state before it, "anchored" from the
    # state the candidate was proposed from (ups/ttc/beam.py).
    lookahead: str = "chain"
    budget: int = 64  # most candidate evaluations (decode + score) per trajectory and step
    noise_scale: float = 1.0  # multiplies the sampler's initial noise
    keep_operator_step: bool = True  # candidate 0 is the operator's own step, unsampled
    weights: RewardWeights = field(default_factory=RewardWeights)
    # Rewards also computed at weight 0, to report how each alone ranks the candidates; they
    # count in TTC's time. The default leaves out fine_step (a fine solve a step, ~20x the
    # operator's cost per trajectory on the golden grid).
    diagnostic_rewards: list[str] = field(
        default_factory=lambda: [name for name in vars(RewardWeights()) if name != "fine_step"]
    )

    @property
    def evaluations_per_step(self) -> int:
        return self.candidates * self.beam_width * self.horizon

    def validate(self) -> None:
        require(self.candidates >= 2, "candidates", f"must be >= 2, got {self.candidates}")
        require(self.beam_width >= 1, "beam_width", f"must be >= 1, got {self.beam_width}")
        require(self.horizon >= 1, "horizon", f"must be >= 1, got {self.horizon}")
        require(self.lookahead in LOOKAHEADS, "lookahead", f"must be one of {LOOKAHEADS}")
        require(self.noise_scale > 0, "noise_scale", f"must be > 0, got {self.noise_scale}")
        unknown = sorted(set(self.diagnostic_rewards) - set(vars(self.weights)))
        require(
            not unknown,
            "diagnostic_rewards",
            f"unknown rewards {unknown}; known: {sorted(vars(self.weights))}",
        )
        require(
            self.evaluations_per_step <= self.budget,
            "budget",
            f"candidates * beam_width * horizon = {self.evaluations_per_step} evaluations per "
            f"step exceed the budget of {self.budget}",
        )


SPLIT_NAMES = ("train", "val", "test")
PDEBENCH_GIVEN = 10  # true frames given under PDEBench's protocol (its `initial_step`)
CORRECTORS = ("consistency", "diffusion")


@dataclass(frozen=True)
class EvalConfig:
    """What ``ups eval`` rolls out and reports."""

    split: str = "test"
    corrector: str = "consistency"  # the sampler behind 'corrected', random, TTC and oracle
    # Temperature of the 'corrected' mode (multiplies its initial noise); None: the one the
    # teacher was selected at, diffusion.val_noise_scale (UpsConfig.corrected_temperature).
    noise_scale: float | None = None
    batch_size: int = 64  # trajectories rolled out together
    plot_trajectories: int = 3  # test trajectories drawn as space-time images
    solver_reference: bool = True  # time the reference solver on the same trajectories
    # A run whose `fno` stage is the baseline (same dataset); "" = this run's own, if trained.
    baseline_run: str = ""
    # Also score every mode under PDEBench's protocol (PDEBENCH_GIVEN true frames, then
    # autoregressive; its metric_func average), beside the default one-frame protocol.
    pdebench: bool = False
    # Step with the operator averaged over this many exact symmetries of Burgers (shifts inside
    # a token, with and without the reflection; 1 = the operator itself): ups/eval/views.py.
    views: int = 1

    def validate(self) -> None:
        require(self.split in SPLIT_NAMES, "split", f"must be one of {SPLIT_NAMES}")
        require(self.corrector in CORRECTORS, "corrector", f"must be one of {CORRECTORS}")
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        require(
            self.noise_scale is None or self.noise_scale >= 0,
            "noise_scale",
            f"must be >= 0 (or null: the teacher's), got {self.noise_scale}",
        )
        require(self.plot_trajectories >= 0, "plot_trajectories", "must be >= 0")


def views_fit(views: int, patch: int) -> bool:
    """Whether ``views`` symmetry views fit ``patch`` grid points per token: 1, or twice a
    divisor of ``patch`` (ups/eval/views.py)."""
    return views == 1 or (views > 1 and views % 2 == 0 and patch > 0 and patch % (views // 2) == 0)


@dataclass(frozen=True)
class WandbConfig:
    """Weights & Biases mirror of the local run record; offline by default."""

    mode: str = "offline"
    project: str = "ups"
    entity: str | None = None

    def validate(self) -> None:
        require(
            self.mode in WANDB_MODES, "mode", f"must be one of {WANDB_MODES}, got {self.mode!r}"
        )


@dataclass(frozen=True)
class TrackingConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass(frozen=True)
class PathsConfig:
    """Where runs and the dataset cache live (relative paths are relative to the working dir)."""

    runs: str = "runs"
    data_cache: str = "data_cache"


@dataclass(frozen=True)
class UpsConfig:
    """The whole resolved config: one object drives data, training, evaluation and logging."""

    name: str = "burgers"
    seed: int = 0
    deterministic: bool = True
    device: str = "cpu"
    threads: int = 2
    # Trained in pipeline order; the registry's defaults (all but the FNO baseline).
    stages: list[str] = field(
        default_factory=lambda: [spec.name for spec in STAGE_SPECS if spec.default]
    )
    data: DataConfig = field(default_factory=DataConfig)
    autoencoder: AutoencoderStageConfig = field(default_factory=AutoencoderStageConfig)
    operator: OperatorStageConfig = field(default_factory=OperatorStageConfig)
    diffusion: DiffusionStageConfig = field(default_factory=DiffusionStageConfig)
    consistency: ConsistencyStageConfig = field(default_factory=ConsistencyStageConfig)
    fno: FnoStageConfig = field(default_factory=FnoStageConfig)
    ttc: TTCConfig = field(default_factory=TTCConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    @property
    def corrected_temperature(self) -> float:
        """The 'corrected' mode's temperature: ``eval.noise_scale``, by default the one the
        teacher was selected at (``diffusion.val_noise_scale``)."""
        if self.eval.noise_scale is None:
            return self.diffusion.val_noise_scale
        return self.eval.noise_scale

    def validate(self) -> None:
        require(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
        require(self.threads >= 1, "threads", f"must be >= 1, got {self.threads}")
        require(
            re.fullmatch(r"cpu|cuda(:\d+)?", self.device) is not None,
            "device",
            f"must be 'cpu' or 'cuda[:N]', got {self.device!r}",
        )
        require(bool(self.stages), "stages", f"is empty: list the stages to train, from {STAGES}")
        unknown = [s for s in self.stages if s not in STAGES]
        require(not unknown, "stages", f"unknown stages {unknown}; choose from {STAGES}")
        require(len(set(self.stages)) == len(self.stages), "stages", "lists a stage twice")
        self._validate_latent_grid()
        require(
            not self.operator.conserve_mass or self.autoencoder.model.kind in LINEAR_KINDS,
            "operator.conserve_mass",
            f"needs autoencoder.model.kind in {LINEAR_KINDS} (a decoder linear in the latent); "
            f"the {self.autoencoder.model.kind} autoencoder's decoded mass is not a linear "
            "function of its latent",
        )
        self._validate_horizons()
        self._validate_views()

    def _validate_latent_grid(self) -> None:
        """``data.points`` must split into the autoencoder's latent tokens the way its kind
        builds them; checked when a stage in ``stages`` builds the autoencoder."""
        if not any("autoencoder" in STAGE_INPUTS[s] for s in self.stages):
            return
        points, model = self.data.points, self.autoencoder.model
        tokens = model.latent_tokens
        if model.kind == "patch":
            require(
                points % tokens == 0,
                "data.points",
                f"is {points}, not a multiple of autoencoder.model.latent_tokens={tokens}: the "
                "patch autoencoder cuts the grid into that many tokens of equal length",
            )
            patch = points // tokens
            require(
                model.latent_dim <= patch,
                "autoencoder.model.latent_dim",
                f"is {model.latent_dim}, more than the patch size {patch} (data.points / "
                "latent_tokens): an orthonormal basis of a patch has at most that many vectors",
            )
            return
        ratio = points // tokens  # must be 2**levels: one halving per encoder level
        require(
            points % tokens == 0 and ratio & (ratio - 1) == 0,
            "data.points",
            f"is {points}, not autoencoder.model.latent_tokens={tokens} times a power of two: "
            "the conv autoencoder halves the grid down to the latent tokens",
        )

    def _validate_horizons(self) -> None:
        """A training window of a time stepper in ``stages`` holds ``rollout_horizon + 1`` of the
        ``data.frames`` stored frames."""
        steps = self.data.frames - 1
        for name in ("operator", "fno"):
            horizon = getattr(self, name).rollout_horizon
            require(
                name not in self.stages or horizon <= steps,
                f"{name}.rollout_horizon",
                f"too long: {name}.rollout_horizon={horizon} exceeds the {steps} steps stored "
                f"(data.frames={self.data.frames}); a training window holds rollout_horizon + 1 "
                "frames: lower it, or store more frames",
            )
        require(
            not self.eval.pdebench or self.data.frames > PDEBENCH_GIVEN,
            "eval.pdebench",
            f"needs more than the protocol's {PDEBENCH_GIVEN} given frames, but data.frames="
            f"{self.data.frames}",
        )

    def _validate_views(self) -> None:
        """``eval.views`` is 1 or twice a divisor of the grid points per latent token."""
        views, tokens = self.eval.views, self.autoencoder.model.latent_tokens
        patch = self.data.points // tokens if self.data.points % tokens == 0 else 0
        require(
            views_fit(views, patch),
            "eval.views",
            f"is {views}: must be 1, or twice a divisor of the {patch} grid points per latent "
            f"token (data.points={self.data.points} / autoencoder.model.latent_tokens={tokens})",
        )


# Sections that say where things go or how they are mirrored, not what is computed:
# they are left out of the config hash so a moved run folder keeps its identity.
UNHASHED_SECTIONS = ("paths", "tracking")
# Sections that change evaluation but not training: resuming a run may change them.
EVAL_SECTIONS = ("ttc", "eval")
# What a stage's trained weights depend on: the run-wide keys plus its ``StageSpec.reads``. A
# checkpoint carries the hash of exactly these (ups.config.stage_hash), so adding a stage or
# changing evaluation settings never invalidates trained weights.
STAGE_RUN_KEYS = ("seed", "deterministic", "data")


# --- W&B sweep specs (configs/sweeps/*.yaml): the subset ``ups sweep`` understands -----------
SWEEP_METHODS = ("grid", "random", "bayes")  # bayes needs W&B's controller: not with --local
SWEEP_GOALS = ("minimize", "maximize")
DISTRIBUTIONS = ("uniform", "log_uniform_values", "int_uniform")


@dataclass(frozen=True)
class SweepParameter:
    """One swept config key: a fixed ``value``, a list of ``values``, or a ``distribution`` on
    [``min``, ``max``] (W&B's names; ``log_uniform_values`` takes the bounds themselves)."""

    values: list[Any] | None = None
    value: Any = None
    distribution: str | None = None
    min: float | None = None
    max: float | None = None

    def validate(self) -> None:
        given = [self.values is not None, self.value is not None, self.distribution is not None]
        require(sum(given) == 1, "values", "give exactly one of values, value or distribution")
        if self.values is not None:
            require(len(self.values) > 0, "values", "must not be empty")
        if self.distribution is None:
            require(self.min is None and self.max is None, "min", "min/max need a distribution")
            return
        require(
            self.distribution in DISTRIBUTIONS, "distribution", f"must be one of {DISTRIBUTIONS}"
        )
        require(self.min is not None and self.max is not None, "min", "needs min and max")
        require(self.min < self.max, "max", f"must be > min={self.min}, got {self.max}")
        if self.distribution == "log_uniform_values":
            require(self.min > 0, "min", f"must be > 0 for log_uniform_values, got {self.min}")
        if self.distribution == "int_uniform":
            require(
                float(self.min).is_integer() and float(self.max).is_integer(),
                "min",
                "int_uniform bounds must be integers",
            )


@dataclass(frozen=True)
class SweepMetric:
    """The single objective W&B optimises: a top-level summary key of the trial's run."""

    name: str = ""
    goal: str = "minimize"

    def validate(self) -> None:
        require(bool(self.name), "name", "must name the metric to optimise")
        require(self.goal in SWEEP_GOALS, "goal", f"must be one of {SWEEP_GOALS}")


@dataclass(frozen=True)
class SweepSpec:
    """A W&B sweep spec; ``parameters`` are ups config keys (``diffusion.train.lr``), which the
    agent passes as ``key=value`` overrides (``${args_no_hyphens}``)."""

    method: str = "random"
    metric: SweepMetric = field(default_factory=SweepMetric)
    parameters: dict[str, SweepParameter] = field(default_factory=dict)
    program: str = ""
    command: list[str] = field(default_factory=list)
    name: str = ""
    description: str = ""

    def validate(self) -> None:
        require(self.method in SWEEP_METHODS, "method", f"must be one of {SWEEP_METHODS}")
        require(bool(self.parameters), "parameters", "must name at least one config key")
        for key, param in self.parameters.items():
            try:
                param.validate()
            except InvalidValue as err:
                raise InvalidValue(f"parameters.{key}.{err.field}", err.message) from err
