import pytest
import torch
from torch import nn

from inference.banded import banded_forward, has_banded_form, map_rows, pooled_mean
from models.espcn import ESPCN
from models.exactness import Pooled
from models.rcan import Block, MultiBlockNet, orthogonal_init_


def trained_like_block(seed: int, **kwargs) -> Block:
    torch.manual_seed(seed)
    block = orthogonal_init_(Block(n_feats=8, n_resblocks=3, **kwargs))
    with torch.no_grad():  # non-zero biases, so every term of the exact pooled mean matters
        for p in block.parameters():
            if p.ndim == 1:
                p.normal_(0, 0.1)
    return block.eval()


@pytest.mark.parametrize("band", [1, 2, 5, 64])
@pytest.mark.parametrize("end_conv", [True, False])
@pytest.mark.parametrize("resblock", ["rcab", "rb", "naf"])
def test_banded_block_equals_whole_image(band: int, end_conv: bool, resblock: str):
    block = trained_like_block(0, end_conv=end_conv, resblock=resblock)
    x = torch.rand(2, 3, 23, 17)
    with torch.no_grad():
        expected = block(x)
    assert torch.allclose(banded_forward(block, x, band=band), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("resblock", ["rcab", "rb", "naf"])
def test_banded_multiblock_net_equals_whole_image_with_clamp(resblock: str):
    net = MultiBlockNet([trained_like_block(seed, clamp=True, resblock=resblock) for seed in (1, 2, 3)])
    x = torch.rand(1, 3, 40, 33)
    with torch.no_grad():
        expected = net(x)
    out = banded_forward(net, x, band=7)
    assert torch.allclose(out, expected, atol=1e-5, rtol=0)
    assert out.min() >= 0 and out.max() <= 1


def test_map_rows_in_place_matches_out_of_place():
    conv = torch.nn.Conv2d(4, 4, 5, padding=2)
    src = torch.rand(1, 4, 19, 11)
    with torch.no_grad():
        expected = conv(src)
        map_rows(conv, src, src, halo=2, band=4)
    assert torch.allclose(src, expected, atol=1e-6)


class CentredUnit(nn.Module):
    """A residual block with a global operation of its own and no declaration: x + conv(x - mean(x))."""

    def __init__(self, n_feats: int, _reduction: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(n_feats, n_feats, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x - x.mean(dim=(2, 3), keepdim=True))


def test_only_blocks_whose_residual_blocks_declare_themselves_have_a_banded_form():
    assert has_banded_form(Block(n_feats=8, n_resblocks=1))
    assert has_banded_form(MultiBlockNet([Block(8, 1, resblock="rb"), Block(8, 1)]))
    undeclared = Block(n_feats=8, n_resblocks=2)
    undeclared.body[1] = CentredUnit(8, 4)
    assert not has_banded_form(undeclared) and not has_banded_form(MultiBlockNet([Block(8, 1), undeclared]))
    assert not has_banded_form(ESPCN())
    for model in (ESPCN(), undeclared):
        with pytest.raises(TypeError, match="layer_order or receptive_radius"):
            banded_forward(model, torch.rand(1, 3, 8, 8))


@pytest.mark.parametrize("band", [1, 3, 64])
@pytest.mark.parametrize("resblock", ["rcab", "naf"])
def test_pooled_mean_is_the_mean_of_what_the_attention_pools(band: int, resblock: str):
    """RCAB pools a 3x3 convolution's output (the border-sums shortcut), NAF a gate's (a banded pass of it)."""
    unit = trained_like_block(4, resblock=resblock).double().body[1]
    (residual,) = unit.layer_order()
    at = next(i for i, step in enumerate(residual.steps) if isinstance(step, Pooled))
    h = torch.randn(2, 8, 13, 7, dtype=torch.float64)
    with torch.no_grad():
        z = h
        for step in residual.steps[:at]:
            z = step.fn(z)
        torch.testing.assert_close(pooled_mean(residual.steps[:at], [], h, band), z.mean(dim=(2, 3)), atol=1e-12,
                                   rtol=0)
