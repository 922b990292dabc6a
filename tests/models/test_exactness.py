"""The declarations exact inference reads: each equals what the network's layers and forward really do."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from models import ESPCN, RCAB, Block, ResBlock, ToyBlock, receptive_field_radius
from models.exactness import declared_pooling, declared_radius


@pytest.mark.parametrize("model", [ESPCN(), ResBlock(4), ToyBlock(n_layers=5, n_feats=4)], ids=type)
def test_declared_radii_equal_the_counted_ones(model: nn.Module):
    assert declared_radius(model) == receptive_field_radius(model)


def test_a_sequential_declares_the_sum_of_its_children_only_when_each_declares():
    assert declared_radius(nn.Sequential(ToyBlock(3, 4), ResBlock(3))) == 5
    assert declared_radius(nn.Sequential(ToyBlock(3, 4), nn.Conv2d(3, 3, 3, padding=1))) is None
    assert declared_radius(RCAB(8)) is None and declared_radius(Block(8, 1, resblock="rb")) is None


def test_rcab_declares_its_global_pooling_and_the_declaration_reproduces_its_forward():
    torch.manual_seed(0)
    rcab = RCAB(8).eval()
    pooling = declared_pooling(rcab)
    assert declared_pooling(ResBlock(8)) is None and pooling.pre_radius == 1 and pooling.last is rcab.conv2
    x = torch.rand(2, 8, 11, 9)
    with torch.no_grad():
        f = pooling.last(pooling.pre(x))
        torch.testing.assert_close(x + f * pooling.gate(f.mean(dim=(2, 3), keepdim=True)), rcab(x), rtol=0, atol=1e-6)
