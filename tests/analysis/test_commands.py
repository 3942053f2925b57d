"""``ups analyze`` and ``ups compare`` from the command line: stdout, --json, --out with the
plots beside the report, and user errors."""

import json

from ups.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def test_compare_writes_markdown_and_plots(smoke_seeds, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["compare", str(smoke_seeds / "seeds.json"), "--out", str(out)]) == 0
    assert "comparison of 3 runs written to" in capsys.readouterr().out
    text = (out / "compare.md").read_text()
    stats = json.loads((smoke_seeds / "seeds.json").read_text())["stats"]["nrmse"]
    assert f"| {stats['mean']:.4g} | {stats['std']:.4g} |" in text.split("| ttc/nrmse |")[1]
    for plot in ("loss_curves", "metric_strips", "correlations"):
        assert (out / f"compare_{plot}.png").read_bytes()[:8] == PNG


def test_compare_json_to_stdout(smoke_seeds, capsys):
    runs = [str(smoke_seeds / f"seed{s}") for s in (0, 1)]
    assert main(["compare", *runs, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in result["runs"]] == ["seed0", "seed1"]
    assert all(c["pearson"] is None for c in result["correlations"])  # 2 runs: undefined


def test_analyze_markdown_json_and_file(smoke_seeds, crashed_run, tmp_path, capsys):
    assert main(["analyze", str(smoke_seeds / "seed0")]) == 0
    assert capsys.readouterr().out.startswith("# Run analysis: seed0")
    assert main(["analyze", str(crashed_run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["run"]["complete"] is False
    assert main(["analyze", str(crashed_run), "--out", str(tmp_path / "a.md")]) == 0
    assert "INCOMPLETE" in (tmp_path / "a.md").read_text()
    assert (tmp_path / "a_loss_curves.png").read_bytes()[:8] == PNG


def test_bad_input_is_a_clear_error(smoke_seeds, tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "nope")]) == 2
    assert "nope is not a run folder" in capsys.readouterr().err
    assert main(["analyze", str(smoke_seeds)]) == 2
    assert "holds 3 runs" in capsys.readouterr().err
    assert main(["analyze", str(smoke_seeds / "seed0"), "seed=1"]) == 2
    assert "takes no key=value overrides" in capsys.readouterr().err
    assert main(["compare", str(smoke_seeds / "seed0")]) == 2
    assert "at least 2 runs" in capsys.readouterr().err
