"""ups: a reproducible neural PDE surrogate stack with a golden-baseline regression gate."""

__version__ = "0.1.0"
