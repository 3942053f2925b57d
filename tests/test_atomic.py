import json
import os

import pytest
import torch

from ups import atomic


def test_write_json_and_torch_save_round_trip(tmp_path):
    atomic.write_json(tmp_path / "a" / "x.json", {"b": 1, "a": [1.5]})
    assert json.loads((tmp_path / "a" / "x.json").read_text()) == {"a": [1.5], "b": 1}
    atomic.torch_save({"w": torch.arange(3.0)}, tmp_path / "c.pt")
    loaded = torch.load(tmp_path / "c.pt", weights_only=True)
    assert torch.equal(loaded["w"], torch.arange(3.0))


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "x.txt"
    atomic.write_text(target, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic.write_text(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_nan_is_refused_in_json(tmp_path):
    with pytest.raises(ValueError):
        atomic.write_json(tmp_path / "x.json", {"loss": float("nan")})


def test_append_line_appends(tmp_path):
    atomic.append_line(tmp_path / "h.jsonl", '{"a": 1}')
    atomic.append_line(tmp_path / "h.jsonl", '{"a": 2}\n')
    assert (tmp_path / "h.jsonl").read_text() == '{"a": 1}\n{"a": 2}\n'
