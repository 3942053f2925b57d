"""The Markdown report of one evaluation: every mode in one table, then TTC against its bounds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ups.config import config_hash
from ups.eval.ttc_stats import REWARD_SPEARMAN
from ups.schema import PDEBENCH_GIVEN, UpsConfig

MODE_NOTES = {
    "persistence": "p_t = u_0",
    "spectral_coarse": "reference solver on the stored grid",
    "fno": "FNO-1D baseline, same data and step budget",
    "operator": "latent operator alone",
    "corrected": "operator + 1 corrector sample",
    "projection": "corrected + mass projection guard",
    "random": "random pick of K candidates",
    "ttc": "reward beam search over K candidates",
    "oracle": "best of K candidates by true error",
}
COLUMNS = (
    ("nrmse", "nRMSE", "{:.4f}"),
    ("nrmse_step1", "step 1", "{:.4f}"),
    ("nrmse_h50", "50%", "{:.4f}"),
    ("nrmse_h100", "100%", "{:.4f}"),
    ("conservation_gap", "cons. gap %", "{:.3f}"),
    ("energy_violations", "E viol.", "{:.3f}"),
    ("tv_violations", "TV viol.", "{:.3f}"),
    ("max_principle_violation", "max viol.", "{:.4f}"),
    ("seconds_per_trajectory", "ms/traj", "{:.2f}"),
)


def markdown_report(
    cfg: UpsConfig,
    metrics: Mapping[str, Any],
    curves: Mapping[str, np.ndarray],
    ttc_steps: Sequence[Mapping[str, Any]] = (),
    reward_steps: Mapping[str, Sequence[float | None]] | None = None,
) -> str:
    """Report text; ``curves`` maps mode -> nRMSE per predicted step (S,); ``ttc_steps`` holds
    TTC's per-step search statistics (:func:`ups.eval.ttc_stats.search_summary`),
    ``reward_steps`` each reward's Spearman per step (:func:`ups.eval.ttc_stats.term_spearman`)."""
    lines = [
        f"# ups eval: {cfg.name}, split `{metrics['split']}` ({metrics['trajectories']} "
        f"trajectories, seed {cfg.seed}, config {config_hash(cfg)[:12]})",
        "",
        "Physical space, autoregressive from frame 0, given frame excluded. nRMSE with its "
        "bootstrap 95% interval over trajectories; horizons are the nRMSE at that fraction of "
        "the rollout." + _views_note(cfg),
        "",
        mode_table(metrics, list(curves)),
    ]
    reference = metrics.get("reference_solver/seconds_per_trajectory")
    if reference is not None:
        lines += [
            "",
            f"Reference solver (fine grid, dataset settings): {1e3 * reference:.1f} "
            "ms per trajectory.",
        ]
    if any(key.endswith("/pdebench_nrmse") for key in metrics):
        lines += ["", *pdebench_section(metrics, list(curves))]
    if "ttc/nrmse" in metrics:
        lines += ["", *ttc_section(cfg, metrics)]
    if reward_steps:
        lines += ["", *reward_table(cfg, metrics, reward_steps)]
    if ttc_steps:
        lines += ["", *ttc_step_table(ttc_steps)]
    return "\n".join(lines) + "\n"


def _views_note(cfg: UpsConfig) -> str:
    views = cfg.eval.views
    if views == 1:
        return ""
    return (
        f" Every latent mode steps with the operator averaged over {views} symmetry views "
        "(`eval.views`: shifts inside a token, with and without the reflection)."
    )


def mode_table(metrics: Mapping[str, Any], modes: list[str]) -> str:
    head = "| mode | " + " | ".join(title for _, title, _ in COLUMNS) + " | 95% CI | what |"
    rows = [head, "|" + "---|" * (len(COLUMNS) + 3)]
    for mode in modes:
        cells = []
        for key, _, fmt in COLUMNS:
            value = metrics.get(f"{mode}/{key}")
            if key == "seconds_per_trajectory" and value is not None:
                value *= 1e3
            cells.append("n/a" if value is None else fmt.format(value))
        ci = f"[{metrics[f'{mode}/nrmse_ci_low']:.4f}, {metrics[f'{mode}/nrmse_ci_high']:.4f}]"
        rows.append(f"| {mode} | " + " | ".join(cells) + f" | {ci} | {MODE_NOTES[mode]} |")
    return "\n".join(rows)


def pdebench_section(metrics: Mapping[str, Any], modes: list[str]) -> list[str]:
    """Each mode's nRMSE under PDEBench's protocol, beside the one-frame protocol's."""
    scored = [m for m in modes if f"{m}/pdebench_nrmse" in metrics]
    return [
        f"PDEBench protocol: {PDEBENCH_GIVEN} true frames given, then autoregressive; the mean "
        "over all frames, the given ones at zero error (its `metric_func`). Published at "
        "nu = 0.01 are on 256 points: compare like with like.",
        "",
        "| mode | nRMSE, PDEBench protocol | nRMSE, 1 frame given |",
        "|---|---|---|",
        *(
            f"| {m} | {metrics[f'{m}/pdebench_nrmse']:.4f} | {metrics[f'{m}/nrmse']:.4f} |"
            for m in scored
        ),
    ]


def ttc_section(cfg: UpsConfig, metrics: Mapping[str, Any]) -> list[str]:
    t = cfg.ttc
    position = metrics.get("ttc/position_random_to_oracle")
    return [
        "## TTC against its bounds",
        "",
        f"K = {t.candidates} candidates, beam width {t.beam_width}, horizon {t.horizon}, noise "
        f"scale {t.noise_scale}, weights {vars(t.weights)}.",
        "",
        "| rule | improvement over corrected % | score-error Spearman | chosen error | "
        "mean candidate error |",
        "|---|---|---|---|---|",
        *(
            f"| {rule} | {_fmt(metrics.get(f'{rule}/improvement_pct'), '{:+.2f}')} | "
            f"{_fmt(metrics.get(f'{rule}/score_error_spearman'), '{:.3f}')} | "
            f"{_fmt(metrics.get(f'{rule}/chosen_error'), '{:.4f}')} | "
            f"{_fmt(metrics.get(f'{rule}/candidate_error'), '{:.4f}')} |"
            for rule in ("random", "ttc", "oracle")
        ),
        "",
        f"TTC sits at {_fmt(position, '{:.2f}')} of the way from random choice (0) to the "
        "oracle (1). Spearman is between a candidate's score and minus its true one-step error "
        "(+1: the score ranks candidates as the truth does).",
    ]


def reward_table(
    cfg: UpsConfig, metrics: Mapping[str, Any], reward_steps: Mapping[str, Sequence[float | None]]
) -> list[str]:
    """Each reward's Spearman with minus the true error, over all steps and at five steps."""
    n_steps = len(next(iter(reward_steps.values())))
    shown = sorted({1, 2, max(1, n_steps // 4), max(1, n_steps // 2), n_steps})
    weights = vars(cfg.ttc.weights)
    out = [
        "## Each reward alone",
        "",
        "Spearman between each reward and minus the candidates' true error, on the candidates "
        "TTC met along its own path (the weighted total chose it; a weight of 0 selects nothing).",
        "",
        "| reward | weight | all steps | " + " | ".join(f"step {s}" for s in shown) + " |",
        "|---|---|---|" + "---|" * len(shown),
    ]
    for name, rows in reward_steps.items():
        cells = [_fmt(rows[s - 1], "{:.3f}") for s in shown]
        overall = _fmt(metrics.get(f"ttc/{REWARD_SPEARMAN}{name}"), "{:.3f}")
        out.append(
            f"| {name} | {weights.get(name, 0.0):g} | {overall} | " + " | ".join(cells) + " |"
        )
    return out


def ttc_step_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """TTC per rollout step, means over trajectories."""
    out = [
        "## TTC per step",
        "",
        "| step | mean candidate reward | chosen reward | reward-error Spearman | chosen error "
        "| mean candidate error |",
        "|---|---|---|---|---|---|",
    ]
    for step, row in enumerate(rows, start=1):
        out.append(
            f"| {step} | {_fmt(row['candidate_score'], '{:.4g}')} | "
            f"{_fmt(row['chosen_score'], '{:.4g}')} | "
            f"{_fmt(row['score_error_spearman'], '{:.3f}')} | "
            f"{_fmt(row['chosen_error'], '{:.4f}')} | {_fmt(row['candidate_error'], '{:.4f}')} |"
        )
    return out


def _fmt(value, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)
