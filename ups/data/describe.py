"""A human-readable datasheet of a loaded dataset."""

from __future__ import annotations

import numpy as np

from ups.data.dataset import BurgersDataset
from ups.data.splits import SPLITS


def describe_dataset(dataset: BurgersDataset) -> str:
    """Markdown summary: identity, PDE, grid, split sizes and value ranges, timing."""
    meta = dataset.meta
    stats = meta["train_stats"]
    lines = [
        f"| dataset | {meta['dataset_id'][:16]} |",
        "|---|---|",
        f"| equation | {meta['equation']} |",
        f"| nu, eps | {meta['nu']:g}, {meta['eps']:.6g} |",
        f"| grid | {len(meta['x'])} points (dx = {meta['dx']:.6g}), "
        f"solved on {meta['config']['fine_points']} |",
        f"| frames | {len(meta['t'])} (dt = {meta['dt']:g}, t in [0, {meta['t'][-1]:g}]) |",
        f"| train stats | mean {stats['mean']:.6g}, std {stats['std']:.6g} |",
        f"| generation | {meta['generation_seconds']:.1f} s |",
    ]
    for name in SPLITS:
        u = dataset.split(name)
        lines.append(
            f"| {name} | {u.shape[0]} trajectories, u in [{np.min(u):.3f}, {np.max(u):.3f}] |"
        )
    return "\n".join(lines)
