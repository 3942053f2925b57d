#!/usr/bin/env bash
# Create .venv (if absent) and install ups with its dev tools. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch first and exactly pinned: on a CPU machine this picks the local 2.13.0+cpu wheel
# instead of pulling the multi-GB CUDA build; a CUDA torch 2.13.0 already installed is kept.
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
