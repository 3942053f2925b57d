"""One run in the local key schema, whatever source it was read from.

The shared base of the readers (:mod:`ups.analysis.sources`, :mod:`ups.analysis.wandb_source`)
and of what reads their output (analyze, compare, plots).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ups.analysis import keys


class AnalysisInputError(ValueError):
    """Sources that cannot be analysed as asked (ambiguous, too few, ...)."""


@dataclass(frozen=True)
class RunView:
    """One run in the local schema, whatever it was read from.

    ``history``: rows ``{"stage", "epoch", <key>: value}`` in logged order; ``metrics``: per
    stage its final metrics, per split ``eval/<split>`` the flat eval metrics (a key absent
    here is missing at the source, never 0); ``incomplete``: why the run is not complete
    (empty when it is); ``notes``: what the source could not tell.
    """

    name: str
    source: str
    config: dict[str, Any]
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    status: str
    info: dict[str, Any] = field(default_factory=dict)
    incomplete: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.incomplete

    @property
    def seed(self) -> int | None:
        return self.config.get("seed")

    @property
    def stages(self) -> list[str]:
        """Stages configured or logged, configured ones first, in pipeline order."""
        configured = list(self.config.get("stages", []))
        logged = [r[keys.STAGE] for r in self.history]
        return list(dict.fromkeys(configured + logged))

    def rows(self, stage: str) -> list[dict[str, Any]]:
        return [r for r in self.history if r[keys.STAGE] == stage]


def incomplete_reasons(
    config: dict[str, Any],
    history: list[dict[str, Any]],
    metrics: dict[str, Any],
    status: str,
    missing_checkpoints: Sequence[str] = (),
) -> tuple[str, ...]:
    """Why a run is not complete: its status, configured stages without final metrics (the
    stage crashed or never started) or without their best checkpoint."""
    reasons = [] if status == "finished" else [f"status is {status!r}"]
    for stage in config.get("stages", []):
        if stage not in metrics:
            logged = sum(1 for r in history if r[keys.STAGE] == stage)
            planned = config.get(stage, {}).get("train", {}).get("epochs")
            reasons.append(f"stage {stage!r} did not finish ({logged} of {planned} epochs logged)")
        elif stage in missing_checkpoints:
            reasons.append(f"stage {stage!r} has no checkpoints/{stage}.pt")
    return tuple(reasons)


def eval_metrics(view: RunView, split: str) -> dict[str, Any]:
    """The flat eval metrics of ``split`` ({} when that split was not evaluated)."""
    return view.metrics.get(keys.eval_section(split), {})
