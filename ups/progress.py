"""What a run prints for the person watching it: the run folder, a header per stage, one line
per epoch with a legend, and progress bars only on a terminal.

Lines go through ``tqdm.write`` so a live bar is not torn. Bars are drawn only when stderr is a
terminal: redirected to a file, a bar's redraw per step would fill the log, so a file gets the
per-epoch lines alone.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

EPOCH_LEGEND = (
    "epoch lines: train = the epoch's mean training loss; val score = what the stage is "
    "selected on, measured on the val split (lower is better); * = best so far, kept as the "
    "stage's checkpoint; eta = the stage's remaining epochs at the last epoch's pace"
)


def bars(progress: bool) -> bool:
    """Whether to draw progress bars: asked for, and stderr is a terminal."""
    return progress and sys.stderr.isatty()


def say(line: str) -> None:
    """One line for the watcher (stdout), printed above any live bar."""
    tqdm.write(line)


def duration(seconds: float) -> str:
    """``seconds`` as ``1h02m``, ``3m05s`` or ``12s``."""
    s = max(0, round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def stage_header(index: int, total: int, name: str, epochs: int, later: list[str]) -> str:
    """``[2/3] operator: 7 epochs; then diffusion`` (``index`` counts from 1)."""
    then = f"; then {', '.join(later)}" if later else ""
    return f"[{index}/{total}] {name}: {epochs} epochs{then}"


def stage_done(name: str, seconds: float, run_seconds: float, later: list[str]) -> str:
    """``[operator] done in 24m02s; run 24m40s so far, diffusion to go`` (seconds)."""
    to_go = f", {', '.join(later)} to go" if later else ", every stage done"
    return f"[{name}] done in {duration(seconds)}; run {duration(run_seconds)} so far{to_go}"


def epoch_line(
    name: str, epoch: int, epochs: int, train: float, score: float, best: bool, eta: float
) -> str:
    """``[operator] epoch 3/7 train 0.01234 val score 0.0567 * eta 4m10s``; ``epoch`` counts
    from 1, ``eta`` in seconds."""
    mark = " *" if best else ""
    return (
        f"[{name}] epoch {epoch}/{epochs} train {train:.4g} val score {score:.4g}{mark} "
        f"eta {duration(eta)}"
    )
