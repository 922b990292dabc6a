"""ESPCN training rules from the paper, pinned through the stage ``espcn.py train`` builds: the last layer
learns 10 times slower, and the settings reach the plateau rule (or the cosine decay) as named."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from core.dist import DistInfo
from engine.schedules import Cosine, Plateau
from engine.trainer import TrainConfig, Trainer
from models.espcn import ESPCN, PreshuffledView
from pipelines.espcn.train import make_stage

SETTINGS = {"SCHEDULE": "plateau", "LR_START": 0.01, "LR_END": 0.0001, "MU": 0.01, "LR_FACTOR": 10.0,
            "COOLDOWN": 20, "PATIENCE": 100, "LAST_LAYER_LR": 0.1, "OPTIMIZER": "sgd", "MOMENTUM": 0.0}
SCALE = 2


def batch(step: int, _dist: DistInfo | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(step)
    lr = torch.rand(2, 1, 7, 7, generator=generator)
    return lr, torch.rand(2, SCALE * SCALE, 7, 7, generator=generator)  # pre-shuffled targets


def effective_rates(settings: dict, tmp_path: Path) -> dict[str, float]:
    """Per layer of ESPCN: how far one training step moved its weights along the loss gradient, relative
    to the gradient (plain SGD: the learning rate the layer actually got)."""
    torch.manual_seed(0)
    net = ESPCN(SCALE, 1, (8, 4))
    view = PreshuffledView(net)
    inputs, targets = batch(0)
    nn.functional.mse_loss(view(inputs), targets).backward()
    before = {name: (p.detach().clone(), p.grad.clone()) for name, p in net.named_parameters()}
    net.zero_grad(set_to_none=True)
    stage = make_stage(settings, total_steps=1, steps_per_epoch=1)
    Trainer(net, [stage], batch, nn.functional.mse_loss, lambda _net: {"val_psnr": 0.0},
            TrainConfig(run_dir=tmp_path, progress=False), torch.device("cpu"), train_module=view).fit()
    rates = {}
    for name, p in net.named_parameters():
        old, grad = before[name]
        rates[name] = float(((old - p.detach()) * grad).sum() / (grad * grad).sum())
    return rates


def test_the_last_layer_learns_ten_times_slower(tmp_path: Path):
    rates = effective_rates(SETTINGS, tmp_path)
    for name, rate in rates.items():
        expected = 0.001 if name.startswith("conv3.") else 0.01
        assert rate == pytest.approx(expected, rel=1e-4), (name, rates)


def test_last_layer_lr_is_the_setting(tmp_path: Path):
    rates = effective_rates({**SETTINGS, "LAST_LAYER_LR": 0.5, "LR_START": 0.02}, tmp_path)
    assert rates["conv3.weight"] == pytest.approx(0.01, rel=1e-4)
    assert rates["conv1.weight"] == pytest.approx(0.02, rel=1e-4)


def test_plateau_settings_reach_the_rule():
    schedule = make_stage({**SETTINGS, "MU": 0.5, "LR_FACTOR": 4.0, "COOLDOWN": 1, "PATIENCE": 2}, 100, 10).schedule
    assert isinstance(schedule, Plateau)
    rates, stops = [], []
    for metric in [30.0, 30.2, 30.3, 30.3, 30.3]:
        stops.append(schedule.observe(metric))
        rates.append(schedule.lr(0))
    # gains under MU lower the rate by LR_FACTOR, not twice within COOLDOWN; PATIENCE stale evaluations stop
    assert rates == [0.01, 0.0025, 0.0025, 0.000625, 0.000625]
    assert stops == [False, False, False, False, True]


def test_cosine_runs_from_lr_start_to_lr_end_over_every_step():
    stage = make_stage({**SETTINGS, "SCHEDULE": "cosine"}, total_steps=300, steps_per_epoch=10)
    assert isinstance(stage.schedule, Cosine) and stage.steps == 300
    assert stage.schedule.lr(0) == pytest.approx(0.01) and stage.schedule.lr(300) == pytest.approx(0.0001)
    assert stage.schedule.lr(150) == pytest.approx((0.01 + 0.0001) / 2)
