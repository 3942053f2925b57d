"""nox sessions; each installs what it needs into its own virtualenv.

Every test marker has a session: ``tests`` (the fast suite), ``determinism``, ``golden`` (the CPU
golden gate as a test), ``gpu_golden`` (refuses to pass silently without CUDA), ``gate`` (the
gate command with its Markdown verdict) and ``lint``. ``bench`` runs the performance benchmark,
which is never part of pytest.
"""

import re
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.default_venv_backend = "venv"


def _install(session: nox.Session) -> None:
    # Exact pin first: picks the local CPU wheel here, keeps a CUDA 2.13.0 elsewhere.
    session.install("torch==2.13.0")
    session.install("-e", ".[dev]")


@nox.session
def tests(session: nox.Session) -> None:
    """The fast suite, in parallel (golden runs excluded by the default marker filter)."""
    _install(session)
    session.run("pytest", "-n", "2", "-q", *session.posargs)


@nox.session
def determinism(session: nox.Session) -> None:
    """Bitwise reproducibility: same seed twice, kill and resume, across processes."""
    _install(session)
    session.run("pytest", "-m", "determinism", "-n", "2", "-q", *session.posargs)


@nox.session
def golden(session: nox.Session) -> None:
    """The CPU golden gate (3 seeds of configs/burgers_golden.yaml) as a pytest run."""
    _install(session)
    session.run("pytest", "-m", "golden and not gpu", "-q", "-s", *session.posargs)


@nox.session
def gpu_golden(session: nox.Session) -> None:
    """The GPU golden gate; on a machine without CUDA it says so and fails, never passes."""
    _install(session)
    has_cuda = session.run(
        "python", "-c", "import torch; print(torch.cuda.is_available())", silent=True
    )
    if "True" not in (has_cuda or ""):
        session.error("gpu_golden needs CUDA: torch.cuda.is_available() is False on this machine")
    session.run("pytest", "-m", "golden and gpu", "-q", "-s", *session.posargs)


@nox.session
def gate(session: nox.Session) -> None:
    """``ups gate`` on the CPU golden config; writes the Markdown verdict to gate.md."""
    _install(session)
    args = session.posargs or ["configs/burgers_golden.yaml", "-j", "3"]
    session.run("ups", "gate", *args, "--markdown", "gate.md")


@nox.session
def bench(session: nox.Session) -> None:
    """The performance benchmark of a trained run (benchmarks/bench.py; needs ``--run RUN``):
    writes benchmarks/results/<name>.json and .md."""
    _install(session)
    session.run("python", "benchmarks/bench.py", *session.posargs)


def _dev_requirement(name: str) -> str:
    """The pin of ``name`` in pyproject.toml's dev extra, its one home."""
    return re.search(rf'"({name}[^"]*)"', Path("pyproject.toml").read_text()).group(1)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over every tracked Python file (what .ci/run checks too); rules in pyproject.toml."""
    session.install(_dev_requirement("ruff"))
    session.run("ruff", "check")
    session.run("ruff", "format", "--check")
