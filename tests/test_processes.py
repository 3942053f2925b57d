import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO
from tests.process_workers import square
from ups.processes import available_cpus, run_in_processes


def test_processes_return_every_result_in_order():
    assert run_in_processes(square, [(i,) for i in range(5)], jobs=2) == [0, 1, 4, 9, 16]
    assert run_in_processes(square, [(i,) for i in range(5)], jobs=1) == [0, 1, 4, 9, 16]


def test_one_job_runs_in_this_process_and_more_spawn_workers():
    assert run_in_processes(os.getpid, [(), ()], jobs=1) == [os.getpid()] * 2
    assert os.getpid() not in run_in_processes(os.getpid, [(), ()], jobs=2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")  # a zombie awaiting its reaper is dead too
    return not (stat.is_file() and stat.read_text().split(") ")[-1].startswith("Z"))


def _wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_sigterm_to_the_runner_ends_its_worker_processes(tmp_path):
    # A CI timeout sends SIGTERM: the workers (a gate's seeds) must not go on as orphans.
    script = (
        "from ups.processes import run_in_processes\n"
        "from tests.process_workers import record_pid_then_sleep\n"
        f"run_in_processes(record_pid_then_sleep, [({str(tmp_path)!r}, i) for i in range(2)], 2)\n"
    )
    runner = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        assert _wait_until(lambda: len(list(tmp_path.glob("*.pid"))) == 2, timeout=120)
        workers = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
        assert all(_alive(pid) for pid in workers)
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=60) == 128 + signal.SIGTERM
        assert _wait_until(lambda: not any(_alive(pid) for pid in workers), timeout=30)
    finally:
        runner.kill()


def test_reused_workers_with_a_progress_bar_keep_the_order():
    args = [(i,) for i in range(7)]
    assert run_in_processes(square, args, jobs=2, fresh=False, desc="squares") == [
        i * i for i in range(7)
    ]


def test_available_cpus_is_at_least_one():
    assert 1 <= available_cpus() <= (os.cpu_count() or 1)
