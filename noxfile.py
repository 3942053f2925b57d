"""nox sessions; each installs what it needs into its own virtualenv."""

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.default_venv_backend = "venv"


def _install(session: nox.Session) -> None:
    # Exact pin first: picks the local CPU wheel here, keeps a CUDA 2.13.0 elsewhere.
    session.install("torch==2.13.0")
    session.install("-e", ".[dev]")


@nox.session
def tests(session: nox.Session) -> None:
    """The fast suite, in parallel."""
    _install(session)
    session.run("pytest", "-n", "2", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the package, the tests and this file."""
    session.install("ruff")
    session.run("ruff", "check", "ups", "tests", "noxfile.py")
