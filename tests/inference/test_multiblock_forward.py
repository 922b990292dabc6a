"""The multiblock networks' CPU path: ONNX Runtime on the whole image where its estimate fits the memory
available, bands otherwise (and without onnxruntime), the choice printed; the outputs agree with the bands and
with eager whole-image inference within float rounding."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from core.errors import UserError
from inference import multiblock_forward as mf
from inference import onnx_runtime
from inference.banded import banded_forward
from inference.exact_forward import widest_layer
from inference.scoring import score_pairs
from models.rcan import Block, MultiBlockNet
from tests.inference.test_banded import CentredUnit, trained_like_block

needs_ort = pytest.mark.skipif(not onnx_runtime.available() or not all(
    importlib.util.find_spec(package) for package in ("onnx", "onnxscript")),
    reason="needs onnxruntime, onnx and onnxscript")
GB = 10**9


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One export cache for the module (an export costs seconds), and the CPU path left to its choice."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SR_KERNEL_CACHE", str(tmp_path_factory.mktemp("cache")))
        patch.setenv(mf.PATH_ENV, "auto")
        yield


@pytest.fixture
def net(cache):
    """Three clamped blocks, one of each residual block design, non-zero biases: a new module each test (its
    path announced afresh), the same weights (its export read from the cache)."""
    return MultiBlockNet([trained_like_block(seed, clamp=True, resblock=kind)
                          for seed, kind in enumerate(("rcab", "rb", "naf"))]).eval()


def image_bytes(net, height: int, width: int) -> int:
    return mf.ORT_LIVE_MAPS * widest_layer(net) * height * width * 4


def test_whole_image_where_the_estimate_fits_the_memory_available(net, monkeypatch):
    x = torch.empty(1, 3, 1000, 1500, device="meta")
    need = image_bytes(net, 1000, 1500)
    fits = mf.choose_cpu_path(net, x, available=int(need / mf.MEMORY_SHARE) + 1)
    assert fits.onnx and fits.line.startswith("CPU path: ONNX Runtime, whole image (est. ")
    short = mf.choose_cpu_path(net, x, available=int(need / mf.MEMORY_SHARE) - 1)
    assert not short.onnx and short.line.startswith("CPU path: bands (the whole image would need ~")
    # what the session's arena keeps from an earlier image counts as available to it
    assert mf.choose_cpu_path(net, x, available=need // 4, held=need).onnx
    assert "\n" not in fits.line + short.line


def test_the_line_names_the_sizes():
    block = Block(64, 1)
    choice = mf.choose_cpu_path(block, torch.empty(1, 3, 3000, 4000, device="meta"), available=40 * GB)
    assert choice.onnx and choice.line == "CPU path: ONNX Runtime, whole image (est. 24.6 GB, 40.0 GB available)"
    choice = mf.choose_cpu_path(block, torch.empty(1, 3, 3000, 4000, device="meta"), available=8 * GB)
    assert choice.line == "CPU path: bands (the whole image would need ~24.6 GB, 8.0 GB available)"
    assert "(est. 786 MB," in mf.choose_cpu_path(block, torch.rand(1, 3, 600, 640), available=8 * GB).line


def test_bands_without_onnxruntime_unknown_memory_float64_or_when_asked(net, monkeypatch):
    x = torch.rand(1, 3, 20, 30)
    monkeypatch.setattr(onnx_runtime, "available", lambda: False)
    missing = mf.choose_cpu_path(net, x, available=100 * GB)
    assert not missing.onnx and "(onnxruntime not installed; pip install onnxruntime for" in missing.line
    monkeypatch.undo()
    monkeypatch.setenv(mf.PATH_ENV, "auto")
    assert not mf.choose_cpu_path(net, x, available=None).onnx
    assert not mf.choose_cpu_path(net, x.double(), available=100 * GB).onnx
    monkeypatch.setenv(mf.PATH_ENV, "bands")
    assert mf.choose_cpu_path(net, x, available=100 * GB) == mf.CpuChoice(False, "CPU path: bands "
                                                                                 "(SR_MULTIBLOCK_CPU=bands)")
    monkeypatch.setenv(mf.PATH_ENV, "fastest")
    with pytest.raises(UserError, match="SR_MULTIBLOCK_CPU=fastest: expected auto"):
        mf.choose_cpu_path(net, x, available=100 * GB)


def test_without_onnxruntime_the_bands_run(net, monkeypatch, capsys):
    monkeypatch.setattr(onnx_runtime, "available", lambda: False)
    x = torch.rand(1, 3, 21, 19)
    assert torch.equal(mf.multiblock_forward(net, x), banded_forward(net, x))
    assert "CPU path: bands (onnxruntime not installed" in capsys.readouterr().out


@needs_ort
def test_onnx_runtime_agrees_with_the_bands_and_eager(net, capsys):
    for shape in [(1, 3, 70, 33), (2, 3, 24, 41)]:
        x = torch.rand(shape)
        out = mf.multiblock_forward(net, x)
        with torch.no_grad():
            eager = net(x)
        assert out.shape == eager.shape
        assert torch.allclose(out, banded_forward(net, x), atol=1e-5, rtol=0)
        assert torch.allclose(out, eager, atol=1e-5, rtol=0)
    printed = capsys.readouterr().out
    assert printed.count("CPU path: ONNX Runtime, whole image") == 1  # printed once: the path did not change


@needs_ort
def test_a_failed_export_falls_back_to_the_bands_once(net, monkeypatch, capsys):
    calls = []

    def failing_export(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("no exporter for this operator\nmore detail")

    monkeypatch.setattr(onnx_runtime, "ort_network", failing_export)
    for shape in [(1, 3, 21, 19), (1, 3, 17, 23)]:
        x = torch.rand(shape)
        assert torch.equal(mf.multiblock_forward(net, x), banded_forward(net, x))
    assert len(calls) == 1  # not tried again for the same weights
    assert "CPU path: bands (the ONNX export failed: RuntimeError: no exporter for this operator)" in \
        capsys.readouterr().out


@needs_ort
def test_the_choice_follows_the_memory_and_is_printed_when_it_changes(net, monkeypatch, capsys):
    x = torch.rand(1, 3, 30, 20)
    memory = {"available": 100 * GB}
    monkeypatch.setattr(mf, "host_memory_available", lambda: memory["available"])
    mf.multiblock_forward(net, x)
    memory["available"] = 1000  # bytes: nothing fits
    assert torch.equal(mf.multiblock_forward(net, x), banded_forward(net, x))
    mf.multiblock_forward(net, x)
    memory["available"] = 100 * GB
    mf.multiblock_forward(net, x)
    lines = [line.split(" (")[0] for line in capsys.readouterr().out.splitlines() if line.startswith("CPU path")]
    assert lines == ["CPU path: ONNX Runtime, whole image", "CPU path: bands", "CPU path: ONNX Runtime, whole image"]


@needs_ort
def test_changed_weights_get_a_new_session(cache):
    block = trained_like_block(7, clamp=False)
    x = torch.rand(1, 3, 16, 18) * 4 - 2  # outside [0, 1]: the clamp shows
    first = mf.multiblock_forward(block, x)
    with torch.no_grad():
        block.tail.bias.add_(0.5)
        assert torch.allclose(mf.multiblock_forward(block, x), block(x), atol=1e-5, rtol=0)
        block.clamp = True  # no weight changes, the graph does
        clamped = mf.multiblock_forward(block, x)
        assert clamped.min() >= 0 and clamped.max() <= 1 and torch.allclose(clamped, block(x), atol=1e-5, rtol=0)
    assert not torch.allclose(first, clamped)


def test_a_net_without_a_banded_form_runs_whole(cache):
    block = Block(8, 2).eval()
    block.body[0] = CentredUnit(8, 4)
    x = torch.rand(1, 3, 20, 22)
    with torch.no_grad():
        assert torch.equal(mf.multiblock_forward(block, x), block(x))


@needs_ort
def test_final_scoring_by_onnx_runtime_gives_the_bands_scores(net, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    pairs = [(f"p{i}", rng.integers(0, 256, (26, 31, 3), dtype=np.uint8),
              rng.integers(0, 256, (26, 31, 3), dtype=np.uint8)) for i in range(2)]
    by_onnx = score_pairs(net, pairs, device=torch.device("cpu"))
    assert "CPU path: ONNX Runtime" in capsys.readouterr().out
    monkeypatch.setenv(mf.PATH_ENV, "bands")
    by_bands = score_pairs(net, pairs, device=torch.device("cpu"))
    for metric, value in by_bands["model"].items():
        assert by_onnx["model"][metric] == pytest.approx(value, abs=1e-4), metric
