"""Config mistakes that used to fail at train time (a traceback, a failed run folder) are
refused when the config is loaded: a ConfigError naming the key, its value and the file."""

import pytest
import torch

from tests.conftest import REPO
from ups.config import ConfigError, load_config


def write(tmp_path, text, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def refused(path, overrides=(), **kwargs) -> str:
    """The ConfigError message of loading ``path``."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, list(overrides), **kwargs)
    return str(caught.value)


def based(tmp_path, text):
    """A config file on top of the smoke config (conv autoencoder, 32 points, 11 frames)."""
    return write(tmp_path, f"include: {REPO / 'configs' / 'burgers_smoke.yaml'}\n{text}")


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.stages and cfg.name == path.stem


@pytest.mark.parametrize(
    ("model", "points", "expected"),
    [
        ("{kind: patch, latent_tokens: 16, latent_dim: 4}", 40, "is 40, not a multiple of"),
        (
            "{kind: conv, latent_tokens: 8}",
            48,
            "is 48, not autoencoder.model.latent_tokens=8 times",
        ),
        ("{kind: conv, latent_tokens: 64}", 32, "is 32, not autoencoder.model.latent_tokens=64"),
    ],
)
def test_points_that_do_not_split_into_latent_tokens_are_refused(tmp_path, model, points, expected):
    path = based(
        tmp_path, f"data: {{points: {points}, fine_points: 960}}\nautoencoder:\n  model: {model}\n"
    )
    message = refused(path)
    assert str(path) in message and "key 'data.points'" in message and expected in message


def test_points_that_split_are_accepted_for_each_kind(tmp_path):
    patch = based(
        tmp_path,
        "data: {points: 48, fine_points: 960}\n"
        "autoencoder: {model: {kind: patch, latent_tokens: 12, latent_dim: 4}}\n",
    )
    assert load_config(patch).data.points == 48
    conv = based(tmp_path, "data: {points: 64, fine_points: 256}\n")  # 8 tokens * 2**3
    assert load_config(conv).data.points == 64


def test_a_patch_latent_larger_than_the_patch_is_refused(tmp_path):
    path = based(tmp_path, "autoencoder: {model: {kind: patch, latent_tokens: 8, latent_dim: 5}}\n")
    message = refused(path)  # 32 points / 8 tokens = patches of 4
    assert str(path) in message and "key 'autoencoder.model.latent_dim' is 5" in message
    assert "patch size 4" in message


def test_a_grid_without_an_autoencoder_stage_is_not_held_to_its_tokens(tmp_path):
    path = based(tmp_path, "stages: [fno]\ndata: {points: 40, fine_points: 960}\n")
    assert load_config(path).data.points == 40  # the FNO baseline never builds it


@pytest.mark.parametrize("stage", ["operator", "fno"])
def test_a_rollout_horizon_longer_than_the_stored_frames_is_refused(tmp_path, stage):
    path = based(tmp_path, f"stages: [autoencoder, {stage}]\n{stage}: {{rollout_horizon: 11}}\n")
    message = refused(path)
    assert str(path) in message and f"key '{stage}.rollout_horizon'" in message
    assert f"{stage}.rollout_horizon=11 exceeds the 10 steps stored (data.frames=11)" in message


def test_the_longest_horizon_the_frames_hold_is_accepted(tmp_path):
    path = based(
        tmp_path,
        "stages: [autoencoder, operator, fno]\n"
        "operator: {rollout_horizon: 10}\nfno: {rollout_horizon: 10}\n",
    )
    cfg = load_config(path)
    assert (cfg.operator.rollout_horizon, cfg.fno.rollout_horizon) == (10, 10)


def test_a_horizon_override_is_named_with_the_file_and_override(tmp_path):
    message = refused(REPO / "configs" / "burgers_smoke.yaml", ["data.frames=3"])
    assert "burgers_smoke.yaml with overrides ['data.frames=3']" in message
    assert "key 'operator.rollout_horizon'" in message and "exceeds the 2 steps" in message


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_a_cuda_device_is_refused_for_a_run(tmp_path, monkeypatch, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = based(tmp_path, f"device: '{device}'\n")
    message = refused(path, run_here=True)
    assert str(path) in message and f"key 'device' is '{device}'" in message
    assert "this machine has no CUDA device; set device: cpu" in message


def test_a_cuda_index_beyond_the_devices_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    message = refused(based(tmp_path, "device: 'cuda:2'\n"), run_here=True)
    assert (
        "key 'device' is 'cuda:2'" in message
        and "has 2 CUDA device(s), cuda:0 to cuda:1" in message
    )
    assert load_config(based(tmp_path, "device: 'cuda:1'\n"), run_here=True).device == "cuda:1"


def test_a_cuda_config_still_reads_where_it_does_not_run(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = load_config(REPO / "configs" / "burgers_golden_gpu.yaml")  # e.g. analysing its run
    assert cfg.device == "cuda"
    assert load_config(REPO / "configs" / "burgers_golden_gpu.yaml", ["device=cpu"], run_here=True)


def test_a_malformed_cuda_device_is_refused_at_validation(tmp_path):
    message = refused(based(tmp_path, "device: cudax\n"))
    assert "key 'device' must be 'cpu' or 'cuda[:N]', got 'cudax'" in message


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"], ids=["blank", "comment", "{}"])
def test_an_empty_config_file_is_refused(tmp_path, text):
    path = write(tmp_path, text)
    message = refused(path)
    assert message.startswith(f"{path}: the file is empty")
    assert "`include: <file>`" in message


def test_an_empty_included_base_is_refused_by_name(tmp_path):
    write(tmp_path, "", "base.yaml")
    path = write(tmp_path, "include: base.yaml\nname: x\n")
    assert refused(path).startswith(f"{tmp_path / 'base.yaml'}: the file is empty")


def test_an_empty_stage_list_is_refused(tmp_path):
    path = based(tmp_path, "stages: []\n")
    message = refused(path)
    assert str(path) in message and "key 'stages' is empty" in message
    assert "autoencoder" in message  # the stages to choose from
