import math

import pytest
import torch
from torch import nn

from ups.schema import TrainConfig
from ups.train.optim import EMA, build_optimizer, build_scheduler


def _lrs(cfg: TrainConfig, total: int) -> list[float]:
    opt = build_optimizer(nn.Linear(2, 2), cfg)
    sched = build_scheduler(opt, cfg, total)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_weight_decay_skips_biases():
    model = nn.Linear(3, 2)
    opt = build_optimizer(model, TrainConfig(weight_decay=0.1, beta1=0.8, beta2=0.95))
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert [p.shape for p in decayed["params"]] == [torch.Size([2, 3])]
    assert [p.shape for p in plain["params"]] == [torch.Size([2])]
    assert decayed["betas"] == (0.8, 0.95)


def test_cosine_warms_up_linearly_then_decays_to_the_floor():
    cfg = TrainConfig(lr=1.0, warmup_steps=4, min_lr_ratio=0.1, schedule="cosine")
    lrs = _lrs(cfg, 14)
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # Halfway through the 10 decay steps the cosine sits midway between 1 and the floor.
    assert lrs[9] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:], strict=False))
    assert lrs[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.9)))


def test_constant_schedule_keeps_the_rate():
    assert _lrs(TrainConfig(lr=0.3, schedule="constant", warmup_steps=5), 6) == [0.3] * 6


def test_onecycle_peaks_at_lr():
    lrs = _lrs(TrainConfig(lr=0.5, schedule="onecycle"), 40)
    assert max(lrs) == pytest.approx(0.5) and lrs[0] < 0.5 / 10 and lrs[-1] < lrs[0]


def test_ema_moves_a_decay_fraction_towards_the_weights_and_copies_buffers():
    model = nn.BatchNorm1d(1)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(2.0)
        model.running_mean.fill_(5.0)
    ema.update(model)
    assert ema.model.weight.item() == pytest.approx(1.1)  # 0.9 * 1 + 0.1 * 2
    assert ema.model.running_mean.item() == 5.0
    assert not ema.model.weight.requires_grad and not ema.model.training
