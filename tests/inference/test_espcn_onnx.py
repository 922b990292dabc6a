"""ESPCN's hand-written ONNX graph is the exporter's: ONNX Runtime gives the same numbers on both; the RGB
frame's last pass gives the bytes of its definition, in C and in PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from data.color import ycbcr_to_rgb_affine
from inference import espcn_onnx, onnx_runtime
from inference.espcn_onnx import network_graph, rgb_frame_graph
from models.espcn import ESPCN

pytestmark = pytest.mark.skipif(not onnx_runtime.available(), reason="onnxruntime is not installed")


@pytest.fixture(autouse=True)
def cache_in(tmp_path, monkeypatch):
    monkeypatch.setenv("SR_KERNEL_CACHE", str(tmp_path / "cache"))


def test_network_graph_runs_as_the_projects_own_export():
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    net = ESPCN(scale=3, channels=1).eval()
    exported = onnx_runtime.ort_network(net, torch.rand(2, 1, 11, 13), threads=1)
    written = onnx_runtime.OrtNetwork(network_graph(net), threads=1)
    x = torch.rand(2, 1, 23, 17)
    assert written(x).shape == (2, 1, 69, 51)
    assert (written(x) - exported(x)).abs().max().item() < 1e-6


def test_rgb_frame_graph_needs_a_luminance_model():
    with pytest.raises(ValueError, match="luminance"):
        rgb_frame_graph(ESPCN(scale=2, channels=3))


@pytest.mark.parametrize("kernel", ["c", "torch"])
@pytest.mark.parametrize(("scale", "shape"), [(3, (2, 5, 7)), (2, (1, 260, 250)), (4, (1, 3, 2))])
def test_frame_from_outputs_mixes_rounds_half_to_even_clamps_and_interleaves(monkeypatch, kernel, scale, shape):
    """The C pass (in bands on several threads for the large frame) and PyTorch's give the same bytes, those of
    the definition: pixel (r i + p, r j + q), colour c = round(y + m_cb cb + m_cr cr + offset) at phase p r + q
    of (i, j), with MATLAB's YCbCr -> RGB at 0 .. 255."""
    monkeypatch.setenv("SR_FRAME_KERNEL", kernel)
    espcn_onnx._kernel.cache_clear()
    if kernel == "c" and espcn_onnx._kernel() is None:
        pytest.skip("the C kernel cannot be built here")
    n, h, w = shape
    rng = np.random.default_rng(scale)
    y = rng.uniform(-40, 300, (n, scale * scale, h, w)).astype(np.float32)
    chroma = rng.uniform(-0.2, 1.2, (n, 2 * scale * scale, h, w)).astype(np.float32)
    chroma[:, :, 0] = np.float32(128 / 255)  # neutral chroma: each colour is y (the ties of a .5 y round to even)
    y[:, :, 0, ::2] = np.round(y[:, :, 0, ::2]) + 0.5
    to_rgb, offset = ycbcr_to_rgb_affine()
    mix = (255.0 * np.concatenate([to_rgb[:, 1:], offset[:, None]], axis=1)).astype(np.float32)
    cb, cr = chroma.reshape(n, 2, scale, scale, 1, h, w).transpose(1, 0, 2, 3, 4, 5, 6)
    total = y.reshape(n, scale, scale, 1, h, w) + cb * mix[:, 0, None, None] + cr * mix[:, 1, None, None]
    total = total + mix[:, 2, None, None]
    want = np.clip(np.rint(total), 0, 255).astype(np.uint8).transpose(0, 4, 1, 5, 2, 3).reshape(n, h * scale,
                                                                                                w * scale, 3)
    got = espcn_onnx.frame_from_outputs(y, chroma, scale)
    espcn_onnx._kernel.cache_clear()
    assert got.dtype == np.uint8 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    neutral = got.reshape(n, h, scale, w, scale, 3)[:, 0]
    assert (neutral == neutral[..., :1]).all()  # grey where the chroma is neutral
