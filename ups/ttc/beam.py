"""Beam search over sampled candidate states, per trajectory.

At every step each of a trajectory's beams proposes K candidate next states (latent), which are
decoded to physical ``u`` and scored by a selection rule; each trajectory keeps its own best
``W`` of the ``W * K`` extensions by cumulative score. The rule is what distinguishes TTC
(physics rewards) from its bounds: a random choice and the oracle (true error). Shapes: B
trajectories, W beams, K candidates, X grid points, latents (tokens, D).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

# (z (M, tokens, D), k) -> k candidate next latents per row (M, k, tokens, D).
Proposer = Callable[[torch.Tensor, int], torch.Tensor]
# Latents (M, tokens, D) -> one deterministic next latent each (M, tokens, D) (lookahead).
Stepper = Callable[[torch.Tensor], torch.Tensor]
# Latents (M, tokens, D) -> physical grid states (M, X), float64.
Decoder = Callable[[torch.Tensor], np.ndarray]


# (c, prev, rows, step, span) -> (total (M,), {term name: (M,)}); see Rule.
Score = Callable[
    [np.ndarray, np.ndarray, np.ndarray, int, int], tuple[np.ndarray, dict[str, np.ndarray]]
]


@dataclass(frozen=True)
class Rule:
    """How candidates are scored (higher is better): ``score(c, prev, rows, step, span)`` -> the
    total (M,) that selects, and the terms it is made of by name (M,) each, logged so that each
    can be judged on its own (``{}`` for a rule of one term).

    ``c`` and ``prev`` are physical states (M, X); ``rows`` (M,) the trajectory of each row;
    ``step`` the 0-based index of the predicted frame ``c`` stands for; ``span`` >= 1 how many
    steps of the data's ``dt`` ``c`` lies after ``prev`` (1 but in an anchored lookahead).
    """

    name: str
    score: Score

    @classmethod
    def plain(
        cls, name: str, total: Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]
    ) -> Rule:
        """A rule whose score is its only term; ``total`` ignores the span."""
        return cls(name, lambda c, prev, rows, step, span: (total(c, prev, rows, step), {}))


@dataclass
class SearchLog:
    """Per step: candidate scores (B, W*K), chosen candidate per trajectory (B,), the
    candidates' true errors (B, W*K) when the truth is known, and the rule's terms by name
    (B, W*K) each, of the candidates' own states (a lookahead's are in the score only)."""

    scores: list[np.ndarray] = field(default_factory=list)
    chosen: list[np.ndarray] = field(default_factory=list)
    errors: list[np.ndarray] = field(default_factory=list)
    terms: list[dict[str, np.ndarray]] = field(default_factory=list)


def beam_search(
    z0: torch.Tensor,
    u0: np.ndarray,
    steps: int,
    propose: Proposer,
    decode: Decoder,
    rule: Rule,
    candidates: int,
    beam_width: int = 1,
    horizon: int = 1,
    lookahead: Stepper | None = None,
    anchored: bool = False,
    error: Callable[[np.ndarray, np.ndarray, int], np.ndarray] | None = None,
) -> tuple[np.ndarray, SearchLog]:
    """Roll ``steps`` frames from latents ``z0`` (B, tokens, D) whose physical state is ``u0``
    (B, X); returns the best beam's physical frames (B, steps, X) and the search log.

    A candidate's score is the rule's score of its own state plus, for ``horizon > 1``, the
    rule's scores of ``horizon - 1`` further ``lookahead`` steps from it: each scored from the
    state before it (a chain of one-step scores), or, ``anchored``, from the state the
    candidate was proposed from, ``span`` steps back, so that a candidate is judged by where it
    leads. ``error(c, rows, step)`` -> (M,) gives candidates' true errors for the log
    (optional).
    """
    if horizon > 1 and lookahead is None:
        raise ValueError("horizon > 1 needs a lookahead stepper")
    B = z0.shape[0]
    z = z0[:, None]  # (B, w, tokens, D); one beam until the first selection
    prev = u0[:, None]  # (B, w, X)
    total = np.zeros((B, 1))
    frames = np.empty((B, 1, 0, u0.shape[-1]))
    log = SearchLog()
    for step in range(steps):
        zc, c, parent = _expand(z, propose, decode, candidates)
        flat_c, rows = c.reshape(-1, c.shape[-1]), np.repeat(np.arange(B), c.shape[1])
        flat_prev = prev[:, parent].reshape(flat_c.shape)
        score, terms = rule.score(flat_c, flat_prev, rows, step, 1)
        score = score.reshape(B, -1)
        log.terms.append({name: term.reshape(B, -1) for name, term in terms.items()})
        if horizon > 1:
            ahead = min(horizon, steps - step) - 1
            anchor = flat_prev if anchored else None
            score = score + _lookahead_score(zc, c, anchor, rule, decode, lookahead, ahead, step)
        if error is not None:
            log.errors.append(error(flat_c, rows, step).reshape(B, -1))
        cumulative = total[:, parent] + score  # (B, w*K)
        keep = _top(cumulative, beam_width)  # (B, W') indices into w*K, best first
        log.scores.append(score)
        log.chosen.append(keep[:, 0])
        pick = torch.as_tensor(keep, device=zc.device)
        z = zc[torch.arange(B, device=zc.device)[:, None], pick]  # (B, W', tokens, D)
        take = np.take_along_axis
        prev = take(c, keep[..., None], axis=1)
        total = take(cumulative, keep, axis=1)
        history = take(frames, parent[keep][..., None, None], axis=1)
        frames = np.concatenate([history, prev[:, :, None]], axis=2)
    best = np.argmax(total, axis=1)  # beams are sorted, so this is 0; kept explicit
    return frames[np.arange(B), best], log


def _expand(z, propose, decode, candidates) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Every beam's ``candidates`` next states from latents ``z`` (B, w, tokens, D): their
    latents (B, w*K, tokens, D), physical states (B, w*K, X), and each one's beam (w*K,);
    candidate j extends beam j // K."""
    B, w = z.shape[:2]
    zc = propose(z.flatten(0, 1), candidates).unflatten(0, (B, w)).flatten(1, 2)
    c = decode(zc.flatten(0, 1)).reshape(B, w * candidates, -1)
    return zc, c, np.repeat(np.arange(w), candidates)


def _lookahead_score(zc, c, anchor, rule, decode, lookahead, ahead, step) -> np.ndarray:
    """Rule scores (B, N) summed over ``ahead`` deterministic steps after each candidate
    (latents ``zc`` (B, N, tokens, D), physical states ``c`` (B, N, X)), each scored from the
    state before it, or from ``anchor`` (B * N, X), the states the candidates came from."""
    B, N = c.shape[:2]
    rows = np.repeat(np.arange(B), N)
    z, prev, extra = zc.flatten(0, 1), c.reshape(B * N, -1), np.zeros(B * N)
    for offset in range(1, ahead + 1):
        z = lookahead(z)
        u = decode(z)
        source, span = (prev, 1) if anchor is None else (anchor, offset + 1)
        extra += rule.score(u, source, rows, step + offset, span)[0]
        prev = u
    return extra.reshape(B, N)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best entries of each row of ``scores`` (B, N), best first; ties go
    to the lower index, so the choice does not depend on sort internals."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return order[:, : min(k, scores.shape[1])]
