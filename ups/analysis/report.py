"""Markdown of an analysis (:func:`ups.analysis.analyze.analyze`) and of a comparison
(:func:`ups.analysis.compare.compare`). ``missing``: the source does not hold the value;
``n/a``: the value is undefined (None)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ups.analysis import keys
from ups.analysis.compare import shown_metrics

EVAL_COLUMNS = (
    "nrmse",
    "nrmse_ci_low",
    "nrmse_ci_high",
    "nrmse_step1",
    "nrmse_h100",
    "conservation_gap",
    "energy_violations",
    "tv_violations",
    "max_principle_violation",
)
MISSING = "missing"
STATS_NOTE = (
    "std with ddof = 1, var = std², CV = std / |mean| in percent, over the runs holding a value; "
    "all numeric eval metrics are in the JSON output (`--json`)."
)


def fmt(value: Any) -> str:
    """A table cell: 4 significant digits, yes/no, n/a for None."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(head: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]


def analysis_markdown(a: dict[str, Any]) -> str:
    run = a["run"]
    lines = [f"# Run analysis: {run['name']}", "", *_run_lines(run), "", "## Flags", ""]
    lines += table(
        ["check", "value", "flagged when", "verdict"],
        [[f["what"], _flag_value(f), f["threshold"], _verdict(f)] for f in a["flags"]],
    )
    lines += ["", "## Training", "", *_training_table(a["stages"])]
    for stage, s in a["stages"].items():
        lines += ["", f"### {stage}: validation (best epoch {fmt(s['best_epoch'])})", ""]
        lines += _val_table(s)
    lines += ["", *_eval_lines(a["eval"])]
    return "\n".join(lines) + "\n"


def _run_lines(run: dict[str, Any]) -> list[str]:
    done = "complete" if run["complete"] else "**INCOMPLETE**"
    lines = [
        f"- source: `{run['source']}`",
        f"- status: {run['status']} ({done})",
        f"- config: {run['config_name']}, seed {run['seed']}, hash {_short(run['config_hash'])}",
    ]
    lines += [f"- incomplete: {reason}" for reason in run["incomplete"]]
    return lines + [f"- note: {note}" for note in run["notes"]]


def _flag_value(flag: dict[str, Any]) -> Any:
    value = flag["value"]
    if isinstance(value, dict):
        changes = (f"{k} " + ("(from 0)" if v is None else f"{v:+.1f}%") for k, v in value.items())
        return ", ".join(changes) or "none"
    if isinstance(value, list):
        return "; ".join(value) or "none"
    return MISSING if flag.get("note") == "missing at the source" else value


def _verdict(flag: dict[str, Any]) -> str:
    if flag["flagged"] is None:
        return f"not checked ({flag.get('note', 'too few epochs')})"
    return "**FLAG**" if flag["flagged"] else "ok"


def _training_table(stages: dict[str, Any]) -> list[str]:
    head = ["stage", "epochs", "finished", "loss first", "loss final", "loss min", "reduction %"]
    head += ["best epoch", "loss at best", "early stop", "grad norm mean", "grad norm max"]
    head += ["train s", "wall s"]
    rows = []
    for stage, s in stages.items():
        loss, grad = s["loss"], s["grad_norm"]
        rows.append(
            [stage, f"{s['epochs_logged']}/{s['epochs_planned']}", s["finished"]]
            + [loss.get("initial"), loss.get("final"), loss.get("min"), loss.get("reduction_pct")]
            + [s["best_epoch"], loss.get("at_epoch"), _early_stop(s), grad["mean"], grad["max"]]
            + [s["train_seconds"], s["wall_seconds"]]
        )
    return table(head, rows)


def _early_stop(s: dict[str, Any]) -> Any:
    if s["stopped_early"] is None:
        return "unfinished" if not s["finished"] else None
    return f"epoch {s['early_stop_epoch']}" if s["stopped_early"] else "no"


def _val_table(s: dict[str, Any]) -> list[str]:
    rows = [
        [key, t.get("initial"), t.get("at_epoch"), t.get("final"), t.get("min")]
        + [t.get("min_epoch"), t.get("change_pct")]
        for key, t in s["val"].items()
    ]
    if not rows:
        return ["no validation rows logged"]
    return table(["metric", "first", "at best", "final", "min", "min epoch", "change %"], rows)


def _eval_lines(ev: dict[str, Any]) -> list[str]:
    if not ev["modes"]:
        return [f"## Evaluation ({ev['split'] or 'none'})", "", "not evaluated"]
    lines = [f"## Evaluation ({ev['split']})", ""]
    rows = [[mode, *(m.get(c, MISSING) for c in EVAL_COLUMNS)] for mode, m in ev["modes"].items()]
    lines += table(["mode", *EVAL_COLUMNS], rows)
    if "ttc" in ev["modes"]:
        rows = [[k, ev["ttc"].get(k, MISSING)] for k in keys.TTC_KEYS]
        lines += ["", *table(["TTC", "value"], rows)]
    if ev["missing"]:
        lines += ["", f"Missing at the source: {', '.join(ev['missing'])}."]
    return lines


def comparison_markdown(c: dict[str, Any]) -> str:
    names = [r["name"] for r in c["runs"]]
    lines = [f"# Comparison of {len(names)} runs (eval split: {c['split']})", ""]
    lines += table(
        ["run", "source", "status", "complete", "seed", "config hash"],
        [
            [r["name"], f"`{r['source']}`", r["status"], r["complete"], r["seed"]]
            + [_short(r["config_hash"])]
            for r in c["runs"]
        ],
    )
    lines += ["", "## Config differences", ""]
    lines += (
        table(["key", *names], [[k, *_cells(v, names)] for k, v in c["config_diff"].items()])
        if c["config_diff"]
        else ["none"]
    )
    lines += ["", f"## Eval metrics ({c['split']})", "", STATS_NOTE, ""]
    lines += _stats_table(
        ["metric"], {k: c["metrics"][k] for k in shown_metrics(c["metrics"])}, names
    )
    lines += ["", "## Final training loss per stage", ""]
    lines += _stats_table(["stage"], c["training_loss"], names)
    lines += ["", *_correlation_lines(c["correlations"], len(names))]
    return "\n".join(lines) + "\n"


def _stats_table(head: list[str], rows: dict[str, Any], names: list[str]) -> list[str]:
    return table(
        [*head, *names, "min", "max", "mean", "std", "var", "CV %"],
        [
            [key, *_cells(col["values"], names, col.get("unfinished", []))]
            + [col["min"], col["max"], col["mean"], col["std"], col["var"], col["cv_pct"]]
            for key, col in rows.items()
        ],
    )


def _cells(values: dict[str, Any], names: list[str], unfinished: Sequence[str] = ()) -> list:
    return [values.get(n, "unfinished" if n in unfinished else MISSING) for n in names]


def _correlation_lines(rows: list[dict[str, Any]], runs: int) -> list[str]:
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    stages = list(dict.fromkeys(r["stage"] for r in rows))
    cell = {(r["stage"], r["metric"]): r for r in rows}
    lines = [
        "## Final training loss vs eval metrics across runs",
        "",
        f"Pearson r / Spearman rho over the {runs} runs (n shown where fewer runs hold both); "
        "n/a: undefined (fewer than 3 runs or a constant input).",
        "",
    ]
    if not rows:
        return lines + ["no stage loss and eval metric held together"]
    return lines + table(
        ["stage", *metrics], [[s, *(_corr(cell[(s, m)], runs) for m in metrics)] for s in stages]
    )


def _corr(r: dict[str, Any], runs: int) -> str:
    text = " / ".join("n/a" if v is None else f"{v:+.3f}" for v in (r["pearson"], r["spearman"]))
    return text if r["n"] == runs else f"{text} (n={r['n']})"


def _short(config_hash: str | None) -> str:
    return config_hash[:8] if config_hash else MISSING
