"""``python -m ups`` is the ``ups`` command."""

from ups.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
