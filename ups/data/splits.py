"""Seeded, disjoint train/val/test splits, checked by initial-condition hashes."""

from __future__ import annotations

import hashlib

import numpy as np

SPLITS = ("train", "val", "test")


def initial_condition_hash(u0: np.ndarray) -> str:
    """sha256 of one initial condition's float64 bytes (shape (X,))."""
    return hashlib.sha256(np.ascontiguousarray(u0, dtype=np.float64).tobytes()).hexdigest()


def split_indices(rng: np.random.Generator, counts: dict[str, int]) -> dict[str, np.ndarray]:
    """Disjoint index sets of the given sizes from a seeded permutation of all samples."""
    order = rng.permutation(sum(counts.values()))
    out, start = {}, 0
    for name in SPLITS:
        out[name] = np.sort(order[start : start + counts[name]])
        start += counts[name]
    return out


def check_disjoint(hashes: dict[str, list[str]]) -> None:
    """Raise if any initial condition appears twice, within or across splits."""
    seen: dict[str, str] = {}
    for name, split_hashes in hashes.items():
        for h in split_hashes:
            if h in seen:
                raise ValueError(f"initial condition {h[:12]} is in both {seen[h]} and {name}")
            seen[h] = name
