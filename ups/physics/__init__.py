"""Burgers physics: spectral calculus, invariants, reference solver, exact solutions, ICs."""
