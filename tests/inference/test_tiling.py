import numpy as np
import pytest
import skimage.data
import torch
from torch import nn

from inference.tiling import tiled_forward
from models import ESPCN, Block, ToyBlock


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A real 70x90 RGB crop, NCHW in [0, 1]."""
    a = skimage.data.astronaut()[60:130, 180:270].astype(np.float32) / 255
    return torch.from_numpy(a).permute(2, 0, 1)[None].contiguous()


def count_calls(model: nn.Module) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    model.register_forward_hook(lambda _m, args, _out: shapes.append(tuple(args[0].shape)))
    return shapes


@pytest.mark.parametrize("blend", ["linear", "none"])
@pytest.mark.parametrize(("scale", "channels"), [(3, 1), (2, 3)])
def test_espcn_tiles_equal_the_whole_image(photo, blend: str, scale: int, channels: int) -> None:
    torch.manual_seed(0)
    model = ESPCN(scale=scale, channels=channels, features=(8, 4)).eval()
    x = photo[:, :channels]
    calls = count_calls(model)
    tiled = tiled_forward(model, x, tile=12, blend=blend)  # windows of 12 + 2*4 (+4) pixels
    assert len(calls) > 4
    with torch.no_grad():
        torch.testing.assert_close(tiled, model(x), rtol=0, atol=1e-5)
    assert tiled.shape == (1, channels, 70 * scale, 90 * scale)


def test_plain_conv_net_tiles_equal_the_whole_image(photo) -> None:
    torch.manual_seed(1)
    model = ToyBlock(n_layers=6, n_feats=8).eval()
    tiled = tiled_forward(model, photo, tile=16)  # overlap defaults to the radius, 6
    with torch.no_grad():
        whole = model(photo)
        torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)
        # the test can fail: too little context does change the result
        assert (tiled_forward(model, photo, tile=16, overlap=2) - whole).abs().max() > 1e-4


def test_small_input_runs_in_one_pass(photo) -> None:
    model = ToyBlock(n_layers=2, n_feats=4)
    calls = count_calls(model)
    out = tiled_forward(model, photo, tile=64, overlap=2)  # window 64 + 6 = 70 rows fits; 90 columns do not
    assert calls == [(1, 3, 70, 70), (1, 3, 70, 70)]
    calls.clear()
    tiled_forward(model, photo[:, :, :30, :40], tile=64, overlap=2)
    assert calls == [(1, 3, 30, 40)]
    assert out.is_inference()  # ran under torch.inference_mode


def test_output_device_and_shape_check(photo) -> None:
    model = ESPCN(scale=2, channels=3, features=(4, 4))
    assert tiled_forward(model, photo, tile=16, out_device="cpu").device.type == "cpu"
    with pytest.raises(ValueError, match="scale=3"):
        tiled_forward(model, photo, tile=16, scale=3)


class TileMean(nn.Module):
    """Maximally non-local: every output pixel is its tile's mean, so each tile disagrees with the next."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x)


def test_linear_blend_leaves_no_seam() -> None:
    x = torch.linspace(0, 1, 200).expand(1, 1, 20, 200)  # a horizontal ramp
    steps = {}
    for blend in ("linear", "none"):
        out = tiled_forward(TileMean(), x, tile=40, overlap=8, blend=blend)
        steps[blend] = (out[..., 1:] - out[..., :-1]).abs().max().item()
    # hard cuts jump by about one tile step of the ramp (40/200 = 0.2); feathering spreads it over 8 px
    assert steps["none"] > 0.15
    assert steps["linear"] < steps["none"] / 6


def test_rcab_block_tiles_differ_only_through_channel_attention(photo) -> None:
    """Global average pooling sees one tile, not the image: the only non-local part of a Block.

    With the attention gates made constant (zero 1x1 weights) tiling is exact; with them active the
    difference is small but not zero (this tiny PyTorch-initialised block on this photo: 4.4e-5). A trained
    full-size block is measured in the tiling module's docstring.
    """
    torch.manual_seed(0)
    block = Block(n_feats=8, n_resblocks=2, reduction=4).eval()
    with torch.no_grad():
        deviation = (tiled_forward(block, photo, tile=16) - block(photo)).abs().max().item()
        for rcab in block.body:
            nn.init.zeros_(rcab.attention.down.weight)
        exact = (tiled_forward(block, photo, tile=16) - block(photo)).abs().max().item()
    assert exact < 1e-6
    assert 1e-5 < deviation < 1e-3
