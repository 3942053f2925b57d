import io

from ups import progress
from ups.progress import bars, duration, epoch_line, stage_done, stage_header


def test_duration_picks_the_largest_unit():
    assert duration(0.4) == "0s"
    assert duration(59.6) == "1m00s"
    assert duration(185) == "3m05s"
    assert duration(3720) == "1h02m"
    assert duration(-5) == "0s"


def test_stage_header_names_the_stages_still_to_come():
    assert stage_header(2, 3, "operator", 7, ["diffusion"]) == (
        "[2/3] operator: 7 epochs; then diffusion"
    )
    assert stage_header(3, 3, "diffusion", 4, []) == "[3/3] diffusion: 4 epochs"


def test_epoch_line_marks_the_best_epoch_and_gives_the_eta():
    line = epoch_line("operator", 3, 7, 0.01234, 0.05678, True, 250.0)
    assert line == "[operator] epoch 3/7 train 0.01234 val score 0.05678 * eta 4m10s"
    assert "*" not in epoch_line("operator", 4, 7, 0.01, 0.06, False, 10.0)


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_bars_only_when_asked_and_on_a_terminal(monkeypatch):
    monkeypatch.setattr(progress.sys, "stderr", _Stream(tty=True))
    assert bars(True) and not bars(False)
    monkeypatch.setattr(progress.sys, "stderr", _Stream(tty=False))
    assert not bars(True)  # a log file gets the epoch lines, not a redraw per step


def test_stage_done_gives_its_time_the_run_so_far_and_what_is_left():
    assert stage_done("operator", 1442, 1480, ["diffusion"]) == (
        "[operator] done in 24m02s; run 24m40s so far, diffusion to go"
    )
    assert stage_done("diffusion", 80, 1560, []) == (
        "[diffusion] done in 1m20s; run 26m00s so far, every stage done"
    )
