"""Physics rewards for TTC candidates, as docs/design.md ("Evaluation and TTC") defines them.

Every reward has one signature ``(c, prev, u0, dt, eps) -> (N,)``: ``c`` (N, X) candidate
states at ``t + dt``, ``prev`` (N, X) the state at ``t``, ``u0`` (N, X) the trajectory's initial
state, all float64 in the physical units of u on the grid ``x_j = j / X`` of [0, 1); ``dt`` > 0
in time units; ``eps = nu / pi`` the diffusion coefficient. Each value is dimensionless, <= 0,
and 0 when its law holds.

Denominators are floored at ``FLOOR`` (units of the quantity divided by). They vanish only for
trivial states (``u0 == 0``, a constant ``prev``, ``c == prev``); there any excess is an
arbitrarily large violation, and the floor keeps it finite so weighted totals stay finite. The
denominator is the same for every candidate of a step, so it never changes their ranking.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from functools import partial

import numpy as np

from ups.physics.burgers import continue_cell_averages, solve_burgers
from ups.physics.invariants import energy as _energy
from ups.physics.invariants import mass as _mass
from ups.physics.invariants import max_abs, total_variation
from ups.physics.residual import burgers_residual

FLOOR = 1e-12
SOLVER_CFL = 0.5  # the solver steps' substeps: h <= SOLVER_CFL * dx / max|prev|
# fine_step's default refinement: ups/data stores cell averages of a field solved on a grid
# data.fine_points / data.points times finer (8 in the golden config; evaluation passes its own).
FINE_FACTOR = 8

Reward = Callable[[np.ndarray, np.ndarray, np.ndarray, float, float], np.ndarray]


def mass(c: np.ndarray, prev: np.ndarray, u0: np.ndarray, dt: float, eps: float) -> np.ndarray:
    """``-|mean(c) - mean(u0)| / rms(u0)``: periodic Burgers conserves the spatial mean."""
    _check(c, prev, u0, dt, eps)
    rms0 = np.sqrt(np.mean(u0**2, axis=-1))
    return -np.abs(_mass(c) - _mass(u0)) / np.maximum(rms0, FLOOR)


def energy(c: np.ndarray, prev: np.ndarray, u0: np.ndarray, dt: float, eps: float) -> np.ndarray:
    """``-relu(E(c) - E(prev)) / E(prev)``, ``E = mean(u^2)/2``: energy never increases."""
    _check(c, prev, u0, dt, eps)
    return _relative_excess(_energy(c), _energy(prev))


def tv(c: np.ndarray, prev: np.ndarray, u0: np.ndarray, dt: float, eps: float) -> np.ndarray:
    """``-relu(TV(c) - TV(prev)) / TV(prev)``, periodic TV: total variation never increases."""
    _check(c, prev, u0, dt, eps)
    return _relative_excess(total_variation(c), total_variation(prev))


def max_principle(
    c: np.ndarray, prev: np.ndarray, u0: np.ndarray, dt: float, eps: float
) -> np.ndarray:
    """``-relu(max|c| - max|u0|) / max|u0|``: ``max|u|`` never exceeds its initial value."""
    _check(c, prev, u0, dt, eps)
    return _relative_excess(max_abs(c), max_abs(u0))


def pde_residual(
    c: np.ndarray, prev: np.ndarray, u0: np.ndarray, dt: float, eps: float
) -> np.ndarray:
    """``-||R|| / ||(c - prev)/dt||``, ``R = burgers_residual(c, prev, dt, eps)``, L2 over x.

    Not 0 for an exact step: the midpoint residual is O(dt^2) (measured median 0.014 for the
    reference solver at dt = 0.05, eps = 0.01/pi, 128 points). A steady state (``c == prev``)
    has residual 0 where it solves the equation, and is floored otherwise.
    """
    _check(c, prev, u0, dt, eps)
    residual = np.linalg.norm(burgers_residual(c, prev, dt, eps), axis=-1)
    rate = np.linalg.norm((c - prev) / dt, axis=-1)
    return -residual / np.maximum(rate, FLOOR)


def solver_step(
    c: np.ndarray,
    prev: np.ndarray,
    u0: np.ndarray,
    dt: float,
    eps: float,
    continuation: Continuations | None = None,
) -> np.ndarray:
    """``-||c - S(prev)|| / ||S(prev)||``: the candidate's distance to one reference-solver step
    of length ``dt`` from the previous state on the same grid (CFL-limited IF-RK4 substeps),
    relative to that step's size; the per-frame nRMSE against a physics estimate of the truth.

    Needs no data, but only scores consistency with ``prev``: along a rollout it cannot see an
    error already made. Candidates of one beam share ``prev``, so each distinct previous state
    is solved once; ``continuation`` (:func:`solver_continuations`, of the same ``eps``) keeps
    solves for later calls.
    """
    _check(c, prev, u0, dt, eps)
    continuation = continuation or solver_continuations(eps)
    return _distance(c, continuation(prev, dt))


def fine_step(
    c: np.ndarray,
    prev: np.ndarray,
    u0: np.ndarray,
    dt: float,
    eps: float,
    factor: int = FINE_FACTOR,
    continuation: Continuations | None = None,
) -> np.ndarray:
    """``-||c - S_F(prev)|| / ||S_F(prev)||``: as :func:`solver_step`, but ``S_F`` is the data's
    own solver: ``prev`` read as the cell averages of a field ``factor`` times finer (the data's
    ``fine_points / points``), that field solved for ``dt`` and averaged back
    (:func:`~ups.physics.burgers.step_cell_averages`).

    From a stored frame it gives the next one to ~1e-7 (the coarse ``solver_step`` is off by
    ~2e-3, most of a trained operator's own ~3e-3; docs/results.md): the exact continuation of
    ``prev``, so the best any reward that judges a step from the previous state can know. It
    still cannot see an error already made. Costs one fine solve per distinct previous state
    (``continuation``: :func:`fine_continuations` of the same ``eps`` and ``factor``).
    """
    _check(c, prev, u0, dt, eps)
    continuation = continuation or fine_continuations(eps, factor)
    return _distance(c, continuation(prev, dt))


class Continuations:
    """The states a step reward compares candidates with: ``continuation(prev, dt)`` -> each
    row of ``prev`` (N, X) solved for ``dt`` (N, X), every distinct row once.

    With ``multiples`` = H > 1 a solve also returns ``2 dt, ..., H dt``, kept for the next
    calls from the same states: an anchored lookahead scores a candidate's states 1..H steps
    after one source (docs/design.md, "Evaluation and TTC"), so one solve of H steps replaces
    1 + 2 + ... + H. ``solve(states (D, X), times (T,)) -> (D, T, X)``.
    """

    def __init__(self, solve: Callable[[np.ndarray, np.ndarray], np.ndarray], multiples: int = 1):
        if multiples < 1:
            raise ValueError(f"multiples must be >= 1, got {multiples}")
        self._solve, self._multiples = solve, multiples
        self._states = np.empty((0, 0))
        self._times = np.empty(0)
        self._frames = np.empty((0, 0, 0))

    def __call__(self, prev: np.ndarray, dt: float) -> np.ndarray:
        distinct, which = np.unique(prev, axis=0, return_inverse=True)
        at = np.flatnonzero(np.isclose(self._times, dt, rtol=1e-12, atol=0.0))
        if not (len(at) and np.array_equal(distinct, self._states)):
            self._states, self._times = distinct, dt * np.arange(1, self._multiples + 1)
            self._frames, at = self._solve(distinct, self._times), [0]
        return self._frames[:, at[0]][which.reshape(-1)]


def solver_continuations(eps: float, multiples: int = 1) -> Continuations:
    """:func:`solver_step`'s continuations: the reference solver on the candidates' grid."""

    def solve(states, times):
        dt = times[0]
        return solve_burgers(states, eps, np.concatenate([[0.0], times]), dt, SOLVER_CFL)[:, 1:]

    return Continuations(solve, multiples)


def fine_continuations(eps: float, factor: int = FINE_FACTOR, multiples: int = 1) -> Continuations:
    """:func:`fine_step`'s continuations: the data's solver, ``factor`` times finer."""

    def solve(states, times):
        return continue_cell_averages(states, eps, times, factor, times[0], SOLVER_CFL)

    return Continuations(solve, multiples)


REWARDS: dict[str, Reward] = {
    "mass": mass,
    "energy": energy,
    "tv": tv,
    "max_principle": max_principle,
    "pde_residual": pde_residual,
    "solver_step": solver_step,
    "fine_step": fine_step,
}


def score(
    c: np.ndarray,
    prev: np.ndarray,
    u0: np.ndarray,
    dt: float,
    eps: float,
    weights: Mapping[str, float],
    fine_factor: int = FINE_FACTOR,
    diagnostic: Collection[str] = (),
    continuations: Mapping[str, Continuations] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Weighted total ``sum_i w_i r_i`` (N,) and the rewards it was computed from by name (N,):
    those of weight > 0 and those named in ``diagnostic`` (computed though they select
    nothing, for reward-vs-error diagnostics). Names missing from ``weights`` weigh 0;
    ``fine_factor`` is the data's ``fine_points / points`` (:func:`fine_step`);
    ``continuations`` (:func:`step_continuations`) keep the step rewards' solves across calls.
    """
    _check_weights(weights)
    unknown = sorted(set(diagnostic) - set(REWARDS))
    if unknown:
        raise ValueError(f"unknown diagnostic rewards {unknown}; known: {sorted(REWARDS)}")
    continuations = continuations or step_continuations(eps, fine_factor)
    bound = REWARDS | {
        "solver_step": partial(solver_step, continuation=continuations["solver_step"]),
        "fine_step": partial(
            fine_step, factor=fine_factor, continuation=continuations["fine_step"]
        ),
    }
    wanted = [n for n in REWARDS if weights.get(n, 0.0) > 0 or n in diagnostic]
    components = {name: bound[name](c, prev, u0, dt, eps) for name in wanted}
    active = {name: w for name, w in weights.items() if w > 0}
    return weighted_total(components, active), components


def step_continuations(
    eps: float, fine_factor: int = FINE_FACTOR, multiples: int = 1
) -> dict[str, Continuations]:
    """The step rewards' continuations by reward name, for :func:`score`."""
    return {
        "solver_step": solver_continuations(eps, multiples),
        "fine_step": fine_continuations(eps, fine_factor, multiples),
    }


def weighted_total(
    components: Mapping[str, np.ndarray], weights: Mapping[str, float]
) -> np.ndarray:
    """``sum_i w_i r_i`` over the names in ``weights``; components (N,) -> (N,).

    Non-decreasing in every component because the weights are checked to be >= 0.
    """
    _check_weights(weights)
    if not components:
        raise ValueError("no reward components to weigh")
    missing = sorted(set(weights) - set(components))
    if missing:
        raise ValueError(f"weights name rewards with no component: {missing}")
    total = np.zeros_like(next(iter(components.values())), dtype=np.float64)
    for name, weight in weights.items():
        total = total + weight * components[name]
    return total


def _distance(c: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``-||c - target|| / ||target||`` per row (N,), the norm floored (see module doc)."""
    distance = np.linalg.norm(c - target, axis=-1)
    return -distance / np.maximum(np.linalg.norm(target, axis=-1), FLOOR)


def _relative_excess(value: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``-relu(value - reference) / reference``, the reference floored (see module doc)."""
    return -np.maximum(value - reference, 0.0) / np.maximum(reference, FLOOR)


def _check_weights(weights: Mapping[str, float]) -> None:
    for name, weight in weights.items():
        if name not in REWARDS:
            raise ValueError(f"unknown reward {name!r}; known: {sorted(REWARDS)}")
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"reward weight {name!r} must be finite and >= 0, got {weight}")


def _check(c: np.ndarray, prev: np.ndarray, u0: np.ndarray, dt: float, eps: float) -> None:
    if c.ndim != 2 or prev.shape != c.shape or u0.shape != c.shape:
        raise ValueError(
            f"c, prev and u0 must all be (N, X); got {c.shape}, {prev.shape}, {u0.shape}"
        )
    for name, array in (("c", c), ("prev", prev), ("u0", u0)):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains NaN or inf")
    if not dt > 0 or not eps >= 0:
        raise ValueError(f"need dt > 0 and eps >= 0, got dt={dt}, eps={eps}")
