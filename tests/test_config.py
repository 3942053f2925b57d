import subprocess
import sys

import pytest

from tests.conftest import GOLDEN_CONFIG, SMOKE_CONFIG
from ups.config import (
    ConfigError,
    config_from_dict,
    config_hash,
    evaluation_overrides,
    load_config,
    to_dict,
    to_yaml,
)
from ups.schema import UpsConfig


def write(tmp_path, text, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_golden_config_loads_with_issue_values():
    cfg = load_config(GOLDEN_CONFIG)
    assert isinstance(cfg, UpsConfig)
    data = cfg.data
    assert (data.nu, data.fine_points, data.points, data.frames) == (0.01, 1024, 128, 41)
    assert (data.n_train, data.n_val, data.n_test) == (1024, 256, 1024)
    assert data.dt == pytest.approx(0.05)
    assert data.eps == pytest.approx(0.01 / 3.141592653589793)


def test_include_builds_on_base_and_overrides_win():
    cfg = load_config(SMOKE_CONFIG)
    assert cfg.name == "burgers_smoke"
    assert cfg.data.points == 32
    assert cfg.data.nu == 0.01  # inherited from the golden file


def test_dotlist_overrides_apply_with_types():
    cfg = load_config(SMOKE_CONFIG, ["seed=7", "data.nu=0.1", "tracking.wandb.mode=disabled"])
    assert cfg.seed == 7 and cfg.data.nu == 0.1 and cfg.tracking.wandb.mode == "disabled"


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, "data:\n  nuu: 0.1\n")
    with pytest.raises(ConfigError, match=r"cfg\.yaml.*data\.nuu"):
        load_config(path)


def test_unknown_override_is_named():
    with pytest.raises(ConfigError, match=r"command-line overrides.*data\.bogus"):
        load_config(SMOKE_CONFIG, ["data.bogus=1"])


def test_wrong_type_names_key_and_file(tmp_path):
    path = write(tmp_path, "data:\n  points: many\n")
    with pytest.raises(ConfigError, match=r"cfg\.yaml.*data\.points"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("data:\n  nu: -1.0\n", "data.nu"),
        ("data:\n  points: 100\n", "data.fine_points"),
        ("data:\n  n_val: 0\n", "data.n_val"),
        ("tracking:\n  wandb:\n    mode: sometimes\n", "tracking.wandb.mode"),
        ("device: tpu\n", "device"),
        ("threads: 0\n", "threads"),
        ("operator:\n  loss_scale: percent\n", "operator.loss_scale"),
        ("operator:\n  loss_scale: amplitude\n", "operator.loss_scale"),  # fixed amplitude
        ("fno:\n  loss_scale: amplitude\n", "fno.loss_scale"),
        ("fno:\n  rollout_horizon: 0\n", "fno.rollout_horizon"),
        ("eval:\n  noise_scale: -0.5\n", "eval.noise_scale"),
        ("diffusion:\n  val_noise_scale: -1.0\n", "diffusion.val_noise_scale"),
        ("ttc:\n  diagnostic_rewards: [tv, entropy]\n", "ttc.diagnostic_rewards"),
        ("ttc:\n  lookahead: rollout\n", "ttc.lookahead"),
        ("autoencoder:\n  model: {kind: wavelet}\n", "autoencoder.model.kind"),
        (  # the conv decoder's mass is not linear in its latent
            "autoencoder:\n  model: {kind: conv}\noperator:\n  conserve_mass: true\n",
            "operator.conserve_mass",
        ),
    ],
)
def test_out_of_range_values_name_key_and_file(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"cfg\.yaml.*'{key}'"):
        load_config(path)


def test_missing_file_and_bad_yaml_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "data: [1,\n"))
    with pytest.raises(ConfigError, match="must look like key.sub=value"):
        load_config(SMOKE_CONFIG, ["seed"])


def test_include_cycle_is_an_error(tmp_path):
    write(tmp_path, "include: b.yaml\n", "a.yaml")
    write(tmp_path, "include: a.yaml\n", "b.yaml")
    with pytest.raises(ConfigError, match="include cycle"):
        load_config(tmp_path / "a.yaml")


def test_yaml_round_trip_gives_equal_config_and_hash(tmp_path):
    cfg = load_config(SMOKE_CONFIG, ["seed=3"])
    again = load_config(write(tmp_path, to_yaml(cfg)))
    assert again == cfg
    assert config_hash(again) == config_hash(cfg)
    assert config_from_dict(to_dict(cfg)) == cfg


def test_hash_changes_with_values_but_not_with_paths_or_tracking():
    base = load_config(SMOKE_CONFIG)
    assert config_hash(load_config(SMOKE_CONFIG, ["seed=1"])) != config_hash(base)
    assert config_hash(load_config(SMOKE_CONFIG, ["data.nu=0.02"])) != config_hash(base)
    moved = load_config(SMOKE_CONFIG, ["paths.runs=/elsewhere", "tracking.wandb.mode=disabled"])
    assert config_hash(moved) == config_hash(base)


def test_hash_is_stable_across_processes():
    code = (
        "from ups.config import load_config, config_hash;"
        f"print(config_hash(load_config(r'{SMOKE_CONFIG}')))"
    )
    hashes = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(seed), "PATH": ""},
        ).stdout.strip()
        for seed in (1, 2)
    }
    assert hashes == {config_hash(load_config(SMOKE_CONFIG))}


def test_config_is_frozen():
    cfg = load_config(SMOKE_CONFIG)
    with pytest.raises(AttributeError):
        cfg.seed = 5  # type: ignore[misc]


def test_evaluation_overrides_turn_one_configs_evaluation_into_anothers():
    old = load_config("configs/burgers_golden.yaml")
    new = load_config(
        "configs/burgers_golden.yaml",
        ["eval.split=val", "eval.noise_scale=0.5", "ttc.weights.mass=2.0", "operator.train.lr=0.1"],
    )
    overrides = evaluation_overrides(old, new)
    assert overrides == ["ttc.weights.mass=2.0", "eval.noise_scale=0.5", 'eval.split="val"']
    # Applied to the old config they give the new one's evaluation, and touch nothing else.
    applied = load_config("configs/burgers_golden.yaml", overrides)
    for section in ("eval", "ttc"):
        assert to_dict(applied)[section] == to_dict(new)[section]
    assert applied.operator == old.operator
    assert evaluation_overrides(new, new) == []
