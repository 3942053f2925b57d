"""The smoke pipeline and its evaluation on CUDA (skipped cleanly where CUDA is absent)."""

import math

import pytest
import torch

from tests.conftest import train_smoke
from ups.eval.evaluate import evaluate

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


def test_smoke_pipeline_trains_and_evaluates_on_cuda(smoke_overrides, tmp_path):
    run = train_smoke(tmp_path / "cuda", [*smoke_overrides, "device=cuda"])
    metrics = evaluate(run, [*smoke_overrides, "device=cuda"], progress=False)
    assert all(math.isfinite(metrics[f"{mode}/nrmse"]) for mode in ("operator", "ttc"))


def test_cuda_runs_are_bitwise_repeatable(smoke_overrides, tmp_path):
    first = train_smoke(tmp_path / "a", [*smoke_overrides, "device=cuda", "stages=[autoencoder]"])
    again = train_smoke(tmp_path / "b", [*smoke_overrides, "device=cuda", "stages=[autoencoder]"])
    a = torch.load(first / "checkpoints" / "autoencoder.pt", weights_only=True)["model"]
    b = torch.load(again / "checkpoints" / "autoencoder.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
