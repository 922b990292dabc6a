from __future__ import annotations

import torch

from inference.banded import banded_forward
from inference.exact_forward import exact_forward, fits_whole, whole_image_bytes
from models.rcan import Block, MultiBlockNet, orthogonal_init_


def test_memory_bound_counts_the_widest_layer_and_the_pixels():
    block = Block(16, 2)
    x = torch.zeros(2, 3, 10, 30)
    assert whole_image_bytes(block, x) == 6 * 16 * 2 * 10 * 30 * 4


def test_the_cpu_keeps_the_bounded_memory_banded_pass():
    torch.manual_seed(0)
    net = MultiBlockNet([orthogonal_init_(Block(8, 2)) for _ in range(2)]).eval()
    x = torch.rand(1, 3, 70, 33)
    assert not fits_whole(net, x)
    assert torch.equal(exact_forward(net, x), banded_forward(net, x))
    with torch.no_grad():
        assert torch.allclose(exact_forward(net, x), net(x), atol=1e-5)
