"""The declarations exact inference reads: each equals what the network's layers and forward really do."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from models import ESPCN, RCAB, Block, NAFBlock, ResBlock, ToyBlock, receptive_field_radius
from models.blocks.naf import simple_gate
from models.exactness import Pooled, Residual, declared_radius


@pytest.mark.parametrize("model", [ESPCN(), ResBlock(4), ToyBlock(n_layers=5, n_feats=4)], ids=type)
def test_declared_radii_equal_the_counted_ones(model: nn.Module):
    assert declared_radius(model) == receptive_field_radius(model)


def test_a_sequential_declares_the_sum_of_its_children_only_when_each_declares():
    assert declared_radius(nn.Sequential(ToyBlock(3, 4), ResBlock(3))) == 5
    assert declared_radius(nn.Sequential(ToyBlock(3, 4), nn.Conv2d(3, 3, 3, padding=1))) is None
    assert declared_radius(RCAB(8)) is None and declared_radius(Block(8, 1, resblock="rb")) is None


def pooled_steps(block: nn.Module) -> int:
    (unit,) = block.layer_order()
    assert isinstance(unit, Residual)
    return sum(isinstance(step, Pooled) for step in unit.steps)


def test_the_declared_layer_orders_are_the_blocks_as_published():
    """The forward pass runs the declared steps; here each block is written out by hand once more, to check
    that the declaration is the design (RCAB: x + CA(conv2(relu(conv1(x)))); NAFNet's SCA: h * conv1x1(mean(h)))."""
    torch.manual_seed(0)
    rcab, rb, naf = RCAB(8).eval(), ResBlock(8).eval(), NAFBlock(8, naf_expansion=3).eval()
    assert (pooled_steps(rcab), pooled_steps(rb), pooled_steps(naf)) == (1, 0, 1)
    x = torch.rand(2, 8, 11, 9)
    with torch.no_grad():
        torch.testing.assert_close(rcab(x), x + rcab.attention(rcab.conv2(torch.relu(rcab.conv1(x)))), rtol=0, atol=0)
        torch.testing.assert_close(rb(x), x + rb.conv2(torch.relu(rb.conv1(x))), rtol=0, atol=0)
        h = simple_gate(naf.depthwise(naf.expand(x)))
        expected = x + naf.project(h * naf.attention(h.mean(dim=(2, 3), keepdim=True)))
        torch.testing.assert_close(naf(x), expected, rtol=0, atol=1e-6)
    assert naf.depthwise.out_channels == 24 and naf.attention.in_channels == 12
    assert declared_radius(naf) is None and declared_radius(rb) == 2
