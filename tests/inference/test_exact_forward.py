from __future__ import annotations

import pytest
import torch
from torch import nn

from core.errors import UserError
from inference.banded import banded_forward
from inference.exact_forward import exact_forward, fits_whole, whole_image_bytes
from models.rcan import Block, MultiBlockNet, orthogonal_init_
from tests.inference.test_banded import CentredUnit


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


def test_a_net_without_a_banded_form_runs_whole_on_the_cpu():
    net = Block(8, 2)
    net.body[0] = CentredUnit(8, 4)  # a global operation that declares nothing
    x = torch.rand(1, 3, 70, 33)
    with torch.no_grad():
        assert torch.equal(exact_forward(net, x), net(x))


class OutOfMemory(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")


def test_a_net_without_a_banded_form_that_does_not_fit_is_refused_with_one_line():
    with pytest.raises(UserError) as refused:
        exact_forward(OutOfMemory(), torch.rand(1, 3, 20, 30))
    message = str(refused.value)
    assert "\n" not in message and message.startswith("OutOfMemory runs only whole")
    assert "models/exactness.py" in message and "20x30 image" in message
