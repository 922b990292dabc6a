import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inference.banded import banded_forward
from inference.fast_espcn import FastESPCN, upscale_image
from inference.self_ensemble import TRANSFORMS, dihedral, self_ensemble, undo_dihedral
from inference.tiling import tiled_forward
from inference.whole_image import super_resolve, super_resolve_tensor
from models.espcn import ESPCN

from .test_banded import trained_like_block


def seeded_espcn(scale: int = 3, channels: int = 1) -> ESPCN:
    torch.manual_seed(0)
    return ESPCN(scale=scale, channels=channels, features=(8, 4)).eval()


class SymmetricNet(nn.Module):
    """Convolutions whose kernels are the same under every flip and rotation, a pointwise tanh and a nearest
    upscale: the network commutes with the 8 transforms, so its ensemble is a single pass."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.scale = scale
        self.conv1, self.conv2 = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 3, 5, padding=2)
        with torch.no_grad():
            for conv in (self.conv1, self.conv2):
                w = conv.weight
                w.copy_(sum(dihedral(w, i) for i in range(TRANSFORMS)) / TRANSFORMS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(torch.tanh(self.conv1(x)))
        return F.interpolate(h, scale_factor=self.scale, mode="nearest") if self.scale > 1 else h


@pytest.mark.parametrize("index", range(TRANSFORMS))
def test_each_transform_is_undone_and_the_eight_differ(index: int):
    x = torch.rand(2, 3, 5, 7)
    assert torch.equal(undo_dihedral(dihedral(x, index), index), x)
    others = [dihedral(x, i) for i in range(TRANSFORMS) if i != index]
    assert not any(o.shape == dihedral(x, index).shape and torch.equal(o, dihedral(x, index)) for o in others)
    assert dihedral(x, index).shape[-2:] == ((5, 7) if index % 2 == 0 else (7, 5))


@pytest.mark.parametrize("scale", [1, 2])
def test_an_equivariant_network_gains_nothing(scale: int):
    net = SymmetricNet(scale).eval()
    x = torch.rand(1, 3, 11, 8)
    with torch.no_grad():
        single = net(x)
    ensembled = self_ensemble(net, x)
    assert ensembled.shape == single.shape
    assert torch.allclose(ensembled, single, atol=1e-6, rtol=0)


def test_a_real_network_differs_from_one_pass_and_is_reproducible():
    net = seeded_espcn()
    x = torch.rand(1, 1, 13, 10)
    with torch.no_grad():
        single = net(x)
    first, second = self_ensemble(net, x), self_ensemble(net, x)
    assert first.shape == single.shape == (1, 1, 39, 30)
    assert (first - single).abs().max() > 1e-3
    assert torch.equal(first, second)


def test_the_average_is_taken_before_clamping():
    def forward(t: torch.Tensor) -> torch.Tensor:  # out of [0, 1] in one transform only
        return t + 2.0 if t.shape[-1] == 4 and torch.equal(t, dihedral(base, 0)) else t.clone()

    base = torch.rand(1, 1, 3, 4)
    assert torch.allclose(self_ensemble(forward, base), base + 2.0 / TRANSFORMS)


def test_each_pass_sees_one_transformed_input():
    seen = []
    x = torch.rand(1, 3, 6, 9)
    self_ensemble(lambda t: seen.append(t.shape[-2:]) or t.clone(), x)
    assert seen == [(6, 9), (9, 6)] * 4


@pytest.mark.parametrize("band", [3, 64])
def test_banded_ensemble_equals_whole_image_ensemble(band: int):
    block = trained_like_block(0)
    x = torch.rand(1, 3, 21, 16)
    with torch.no_grad():
        whole = self_ensemble(block, x)
    assert torch.allclose(self_ensemble(lambda t: banded_forward(block, t, band=band), x), whole, atol=1e-5, rtol=0)
    assert (whole - block(x)).abs().max() > 1e-4  # the ensemble does something here


def test_tiled_and_fast_ensembles_equal_whole_image_ensemble():
    net = seeded_espcn(scale=2)
    x = torch.rand(1, 1, 40, 29)
    with torch.no_grad():
        whole = self_ensemble(net, x)
    tiled = self_ensemble(lambda t: tiled_forward(net, t, tile=8), x)
    assert torch.allclose(tiled, whole, atol=1e-5, rtol=0)
    assert torch.allclose(self_ensemble(FastESPCN(net), x), whole, atol=1e-4, rtol=0)


def test_whole_image_paths_take_the_ensemble():
    net = seeded_espcn(scale=2)
    rgb = torch.rand(1, 3, 12, 9)
    plain = super_resolve_tensor(net, rgb, scale=2, channels=1, tile=8)
    plus = super_resolve_tensor(net, rgb, scale=2, channels=1, tile=8, ensemble=True)
    assert plus.shape == plain.shape and (plus - plain).abs().max() > 1e-3
    as_array = super_resolve(net, rgb[0].permute(1, 2, 0).numpy(), scale=2, channels=1,
                             device=torch.device("cpu"), ensemble=True)
    assert np.allclose(as_array, plus[0].permute(1, 2, 0).numpy(), atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_upscale_image_rounds_the_ensemble_average(channels: int):
    net = seeded_espcn(scale=2, channels=channels)
    image = (np.random.default_rng(0).random((10, 7, 3)) * 255).astype(np.uint8)
    fast = FastESPCN(net)
    plain, plus = upscale_image(fast, image), upscale_image(fast, image, ensemble=True)
    assert plus.shape == plain.shape == (20, 14, 3) and plus.dtype == np.uint8
    assert not np.array_equal(plus, plain)
    assert np.array_equal(plus, upscale_image(fast, image, ensemble=True))
