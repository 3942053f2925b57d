"""Burgers reference data: generation, on-disk cache with checksums, splits, normalisation."""
