"""ESPCN's hand-written ONNX graph is the exporter's: ONNX Runtime gives the same numbers on both."""
from __future__ import annotations

import pytest
import torch

from inference import onnx_runtime
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
