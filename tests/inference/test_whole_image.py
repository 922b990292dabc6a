"""Which path a network takes (tiles only for a network that declares itself local; anything else exactly), and the
fast chroma upscaler."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inference.whole_image import bicubic_phases, bicubic_upscale, run_model, super_resolve_tensor
from models import Block, ToyBlock
from tests.inference.test_banded import CentredUnit


class ImageCentred(nn.Module):
    """A custom network with a global operation and no declaration: x - mean(x) + 0.5."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(dim=(2, 3), keepdim=True) + 0.5


def windows_seen(model: nn.Module) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    model.register_forward_hook(lambda _m, args, _out: shapes.append(tuple(args[0].shape)))
    return shapes


def undeclared_block() -> Block:
    torch.manual_seed(0)
    block = Block(8, 2, resblock="rb")
    block.body[1] = CentredUnit(8, 4)
    return block.eval()


@pytest.mark.parametrize("make", [ImageCentred, undeclared_block])
def test_an_undeclared_network_is_never_tiled(make):
    """With 8-pixel tiles a tile's mean would differ from the image's: the output equals one whole pass."""
    model = make()
    x = torch.rand(1, 3, 48, 40)
    seen = windows_seen(model)
    with torch.no_grad():
        whole = model(x)
    seen.clear()
    out = super_resolve_tensor(model, x, scale=1, channels=3, tile=8)
    assert seen == [(1, 3, 48, 40)]
    assert torch.equal(out, whole.clamp(0.0, 1.0))
    image = x[0].permute(1, 2, 0).numpy()
    assert torch.equal(torch.from_numpy(run_model(model, image, torch.device("cpu"), tile=8)).permute(2, 0, 1)[None],
                       whole)


def test_a_declared_local_network_runs_on_tiles():
    torch.manual_seed(1)
    model = ToyBlock(n_layers=3, n_feats=4).eval()
    x = torch.rand(1, 3, 48, 40)
    seen = windows_seen(model)
    out = super_resolve_tensor(model, x, scale=1, channels=3, tile=8)
    assert len(seen) > 1 and all(shape[2] < 48 for shape in seen)
    with torch.no_grad():
        torch.testing.assert_close(out, model(x).clamp(0.0, 1.0), rtol=0, atol=1e-5)


def test_a_block_of_either_design_runs_in_exact_bands_on_the_cpu():
    for resblock in ("rcab", "rb"):
        torch.manual_seed(2)
        block = Block(8, 2, resblock=resblock).eval()
        x = torch.rand(1, 3, 48, 40)
        seen = windows_seen(block)
        out = super_resolve_tensor(block, x, scale=1, channels=3, tile=8)
        assert seen == []  # banded: the block's layers, never the block's forward on a window
        with torch.no_grad():
            torch.testing.assert_close(out, block(x).clamp(0.0, 1.0), rtol=0, atol=1e-5)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("shape", [(1, 2, 18, 32), (2, 3, 7, 5), (1, 1, 1, 1), (1, 2, 2, 3)])
def test_polyphase_bicubic_is_pytorchs_bicubic(scale, shape):
    x = torch.rand(shape)
    ref = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    out = bicubic_upscale(x, scale)
    assert out.shape == ref.shape and (out - ref).abs().max().item() < 1e-4


def test_bicubic_phases_sum_to_one_and_the_centre_phase_of_odd_scales_is_the_pixel_itself():
    for scale in (2, 3, 4, 5):
        assert torch.allclose(bicubic_phases(scale).sum(dim=1), torch.ones(scale, dtype=torch.float64))
    assert bicubic_phases(3)[1].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
