import pytest
import torch
from torch import nn

from core.errors import UserError
from engine.weight_average import WeightAverage


def test_each_update_moves_the_average_by_one_minus_decay_and_copies_buffers():
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    average = WeightAverage(net, decay=0.75)
    start = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(4.0)
        net[1].running_mean.fill_(2.0)
    average.update()
    assert torch.allclose(average.module[0].weight, start + 1.0)  # 0.75 * w + 0.25 * (w + 4)
    assert torch.equal(average.module[1].running_mean, torch.full((2,), 2.0))
    assert not average.module[0].weight.requires_grad


def test_a_decay_outside_zero_one_is_refused():
    with pytest.raises(UserError, match=r"^EMA=1.0: expected a number in \[0, 1\): a decay per step"):
        WeightAverage(nn.Linear(1, 1), decay=1.0)


def test_a_slow_average_follows_the_exact_formula_where_float32_would_freeze():
    """decay 0.99999 and a weight 1e-4 away: each step moves the average by 1e-9, under float32's resolution
    at 0.1 (7e-9), so a float32 average would not move at all."""
    net = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.1)
    average = WeightAverage(net, decay=0.99999)
    start = net.weight.item()
    with torch.no_grad():
        net.weight.fill_(0.1001)
    for _ in range(20_000):
        average.update()
    target = net.weight.item()
    exact = start + (target - start) * (1 - 0.99999 ** 20_000)
    assert average.float64_state()["weight"].item() == pytest.approx(exact, abs=1e-12)
    assert average.module.weight.item() == pytest.approx(exact, abs=1e-8)
    assert average.module.weight.item() != pytest.approx(start, abs=1e-6)  # it moved: 1.8e-5 here
