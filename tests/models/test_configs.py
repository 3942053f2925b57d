import subprocess
import sys

import pytest

from ups.checks import InvalidValue
from ups.models.configs import (
    AutoencoderConfig,
    DiffusionConfig,
    FNOConfig,
    OperatorConfig,
    check_transformer_size,
)


def test_loading_a_config_file_does_not_import_torch():
    code = (
        "import sys; from ups.config import load_config; "
        "load_config('configs/burgers_golden.yaml'); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("cfg", "field"),
    [
        (AutoencoderConfig(kind="mlp"), "kind"),
        (AutoencoderConfig(kernel=4), "kernel"),
        (OperatorConfig(position="rotary"), "position"),
        (OperatorConfig(amplitude="log"), "amplitude"),
        (DiffusionConfig(sigma_max=0.001), "sigma_max"),
        (FNOConfig(modes=0), "modes"),
    ],
)
def test_validate_names_the_bad_field(cfg, field):
    with pytest.raises(InvalidValue) as err:
        cfg.validate()
    assert err.value.field == field


def test_width_must_split_into_heads():
    with pytest.raises(InvalidValue, match="divisible by heads=3"):
        check_transformer_size(width=64, depth=1, heads=3, mlp_ratio=2)
