from ups.config import load_config
from ups.eval.report import (
    COLUMNS,
    markdown_report,
    mode_table,
    reward_table,
    ttc_section,
    ttc_step_table,
)

SMOKE = "configs/burgers_smoke.yaml"


def _mode(mode: str, nrmse: float) -> dict:
    out = {f"{mode}/{key}": 0.5 for key, _, _ in COLUMNS}
    out |= {f"{mode}/nrmse": nrmse, f"{mode}/nrmse_ci_low": 0.1, f"{mode}/nrmse_ci_high": 0.3}
    out[f"{mode}/seconds_per_trajectory"] = 0.0125
    return out


def test_mode_table_formats_each_cell_and_marks_missing_ones():
    metrics = _mode("operator", 0.2)
    del metrics["operator/tv_violations"]
    table = mode_table(metrics, ["operator"])
    row = table.splitlines()[2]
    assert row.startswith("| operator | 0.2000 | 0.5000 | 0.5000 | 0.5000 | 0.500 | 0.500 | n/a |")
    assert "| 12.50 | [0.1000, 0.3000] | latent operator alone |" in row  # seconds -> ms


def test_ttc_section_reports_each_rule_and_the_position():
    cfg = load_config(SMOKE)
    metrics = {"ttc/improvement_pct": 4.0, "ttc/position_random_to_oracle": 0.25}
    lines = ttc_section(cfg, metrics)
    assert f"K = {cfg.ttc.candidates} candidates" in lines[2]
    assert "| ttc | +4.00 | n/a | n/a | n/a |" in lines
    assert lines[-1].startswith("TTC sits at 0.25 of the way")


def test_ttc_step_table_numbers_steps_from_one():
    row = {
        "candidate_score": -0.5,
        "chosen_score": -0.25,
        "score_error_spearman": 0.1,
        "chosen_error": 0.02,
        "candidate_error": None,
    }
    assert ttc_step_table([row])[-1] == "| 1 | -0.5 | -0.25 | 0.100 | 0.0200 | n/a |"


def test_markdown_report_heads_with_split_and_adds_sections_only_when_measured():
    cfg = load_config(SMOKE)
    metrics = {"split": "val", "trajectories": 8, **_mode("operator", 0.2)}
    text = markdown_report(cfg, metrics, {"operator": None})
    assert text.startswith(f"# ups eval: {cfg.name}, split `val` (8 trajectories, seed 0")
    assert "Reference solver" not in text and "## TTC" not in text
    metrics["reference_solver/seconds_per_trajectory"] = 0.0761
    assert "76.1 ms per trajectory" in markdown_report(cfg, metrics, {"operator": None})


def test_reward_table_shows_each_reward_with_its_weight_at_five_steps():
    cfg = load_config(SMOKE)
    steps = {"energy": [0.9, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0, None], "solver_step": [0.5] * 8}
    metrics = {"ttc/reward_spearman_energy": 0.35}
    lines = reward_table(cfg, metrics, steps)
    assert lines[4] == "| reward | weight | all steps | step 1 | step 2 | step 4 | step 8 |"
    energy = cfg.ttc.weights.energy
    assert lines[6] == f"| energy | {energy:g} | 0.350 | 0.900 | 0.500 | 0.300 | n/a |"
    assert lines[7] == "| solver_step | 0 | n/a | 0.500 | 0.500 | 0.500 | 0.500 |"
    text = markdown_report(cfg, {"split": "val", "trajectories": 8}, {}, (), steps)
    assert "## Each reward alone" in text
