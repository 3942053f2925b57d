"""The rollout modes evaluated side by side, each ``(env, u) -> predicted frames``.

``u`` (B, S+1, X) holds the true physical trajectories (frame 0 is given); every mode returns
its physical prediction of frames 1..S, (B, S, X) float64. Random draws come from the
environment's named generators, which persist across batches. A mode in :data:`REUSES` post-
processes the frames an earlier mode predicted for the same batch (``env.frames``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ups.eval.surrogate import Surrogate
from ups.physics.burgers import solve_burgers
from ups.repro import numpy_rng
from ups.rollout import rollout
from ups.schema import UpsConfig
from ups.ttc import rewards
from ups.ttc.beam import Rule, SearchLog, beam_search

CANDIDATE_STREAM = "eval/candidates"  # random, TTC and oracle draw the same candidates


@dataclass
class ModeEnv:
    """What the modes share: config, physics of the dataset, the surrogate, generators, logs."""

    cfg: UpsConfig
    dt: float
    eps: float
    surrogate: Surrogate
    baseline: Callable[[np.ndarray, int], np.ndarray] | None = None  # (u0, steps) -> frames
    generators: dict[str, torch.Generator] = field(default_factory=dict)
    choice_rng: np.random.Generator | None = None
    logs: dict[str, list[SearchLog]] = field(default_factory=dict)
    frames: dict[str, np.ndarray] = field(default_factory=dict)  # this batch's, by mode

    def generator(self, stream: str, mode: str) -> torch.Generator:
        """``mode``'s generator of ``stream`` for the whole evaluation (made on first use).

        Each mode has its own instance seeded by the stream alone, so modes that share a stream
        draw the same numbers (random, TTC and the oracle: the same candidates).
        """
        key = f"{mode}:{stream}"
        if key not in self.generators:
            self.generators[key] = self.surrogate.ctx.generator(stream)
        return self.generators[key]


def persistence(env: ModeEnv, u: np.ndarray) -> np.ndarray:
    """``p_t = u_0``: the trivial baseline every number is compared with."""
    return np.repeat(u[:, :1], u.shape[1] - 1, axis=1)


def spectral_coarse(env: ModeEnv, u: np.ndarray) -> np.ndarray:
    """The classic numerical baseline: the reference solver run on the stored (coarse) grid."""
    data = env.cfg.data
    t = np.arange(u.shape[1]) * env.dt
    frames = solve_burgers(u[:, 0], env.eps, t, data.solver_dt_max, cfl=data.solver_cfl)
    return frames[:, 1:]


def fno(env: ModeEnv, u: np.ndarray) -> np.ndarray:
    """The classic learned baseline (FNO-1D trained on the same data and step budget)."""
    if env.baseline is None:
        raise ValueError("no FNO baseline was loaded")
    return env.baseline(u[:, 0], u.shape[1] - 1)


def operator(env: ModeEnv, u: np.ndarray) -> np.ndarray:
    """The latent operator alone."""
    return _latent_rollout(env, u, corrector=None)


def corrected(env: ModeEnv, u: np.ndarray) -> np.ndarray:
    """Operator plus one sampled correction per step."""
    generator = env.generator("eval/corrected", "corrected")
    corrector = env.surrogate.corrector(generator, env.cfg.corrected_temperature)
    return _latent_rollout(env, u, corrector)


def projection(env: ModeEnv, u: np.ndarray) -> np.ndarray:
    """The corrected rollout of this batch with a mass guard: each frame's mean drift from
    ``u_0`` subtracted (exact, nearly free)."""
    if "corrected" not in env.frames:
        raise ValueError(
            "projection guards the corrected frames of the batch: run 'corrected' first"
        )
    pred = env.frames["corrected"]
    return pred - (pred.mean(axis=-1) - u[:, :1].mean(axis=-1))[..., None]


def random_choice(env: ModeEnv, u: np.ndarray) -> np.ndarray:
    """A uniformly random candidate per trajectory and step (TTC's lower bound)."""
    rng = env.choice_rng

    def score(c, prev, rows, step):
        return rng.random(len(c))

    return _search(env, u, Rule.plain("random", score), width=1, horizon=1)


def ttc(env: ModeEnv, u: np.ndarray) -> np.ndarray:
    """Beam search on the physics rewards (never sees the truth beyond frame 0)."""
    rule = ttc_rule(env.cfg, env.dt, env.eps, u[:, 0])
    return _search(env, u, rule, env.cfg.ttc.beam_width, env.cfg.ttc.horizon)


def ttc_rule(cfg: UpsConfig, dt: float, eps: float, u0: np.ndarray) -> Rule:
    """TTC's rule for trajectories starting at ``u0`` (B, X): the weighted physics rewards of a
    candidate ``span`` steps of ``dt`` after its source state. Each reward of weight > 0 or in
    ``ttc.diagnostic_rewards`` is logged beside the weighted total, so each can be judged
    alone. An anchored lookahead's spans 1..H from one source share one solve of the step
    rewards."""
    weights, diagnostic = vars(cfg.ttc.weights), cfg.ttc.diagnostic_rewards
    fine_factor = cfg.data.fine_points // cfg.data.points
    multiples = cfg.ttc.horizon if cfg.ttc.lookahead == "anchored" else 1
    continuations = rewards.step_continuations(eps, fine_factor, multiples)

    def score(c, prev, rows, step, span):
        return rewards.score(
            c, prev, u0[rows], dt * span, eps, weights, fine_factor, diagnostic, continuations
        )

    return Rule("ttc", score)


def oracle(env: ModeEnv, u: np.ndarray) -> np.ndarray:
    """The candidate closest to the truth per trajectory and step (TTC's upper bound): over
    TTC's horizon, the least true error summed along the candidate's lookahead path."""

    def score(c, prev, rows, step):
        return -relative_error(c, u[rows, step + 1])

    return _search(env, u, Rule.plain("oracle", score), width=1, horizon=env.cfg.ttc.horizon)


MODES: dict[str, Callable[[ModeEnv, np.ndarray], np.ndarray]] = {
    "persistence": persistence,
    "spectral_coarse": spectral_coarse,
    "fno": fno,
    "operator": operator,
    "corrected": corrected,
    "projection": projection,
    "random": random_choice,
    "ttc": ttc,
    "oracle": oracle,
}
CANDIDATE_MODES = ("random", "ttc", "oracle")
# Modes that sample the run's corrector: a run without its stage evaluates the others.
CORRECTOR_MODES = ("corrected", "projection", *CANDIDATE_MODES)
# Modes that reuse an earlier mode's frames instead of rolling out again; their cost includes it.
REUSES = {"projection": "corrected"}


def relative_error(c: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``||c - truth|| / ||truth||`` over x, per row (M,): the per-frame nRMSE."""
    return np.linalg.norm(c - truth, axis=-1) / np.linalg.norm(truth, axis=-1)


def _latent_rollout(env: ModeEnv, u: np.ndarray, corrector) -> np.ndarray:
    s = env.surrogate
    u0 = s.ctx.to_model(u[:, 0])
    pred = rollout(s.autoencoder, s.operator, u0, s.ctx.cond(len(u0)), u.shape[1] - 1, corrector)
    return s.ctx.physical(pred)


def _search(env: ModeEnv, u: np.ndarray, rule: Rule, width: int, horizon: int) -> np.ndarray:
    s, cfg = env.surrogate, env.cfg.ttc
    frames, log = beam_search(
        s.encode(u[:, 0]),
        u[:, 0],
        u.shape[1] - 1,
        propose=s.proposer(
            env.generator(CANDIDATE_STREAM, rule.name), cfg.noise_scale, cfg.keep_operator_step
        ),
        decode=s.decode,
        rule=rule,
        candidates=cfg.candidates,
        beam_width=width,
        horizon=horizon,
        lookahead=s.step,
        anchored=cfg.lookahead == "anchored",
        error=lambda c, rows, step: relative_error(c, u[rows, step + 1]),
    )
    env.logs.setdefault(rule.name, []).append(log)
    return frames


def new_env(cfg: UpsConfig, dt: float, eps: float, surrogate: Surrogate, baseline=None) -> ModeEnv:
    return ModeEnv(cfg, dt, eps, surrogate, baseline, choice_rng=numpy_rng(cfg.seed, "eval/random"))
