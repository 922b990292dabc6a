"""The Python API and the image path of ``espcn.py upscale``: what they return, write and import."""
from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from core import hardware
from core.errors import UserError
from engine.speed import AUTO_ENV
from inference.fast_espcn import FastESPCN
from inference.whole_image import super_resolve
from pipelines.espcn.api import upscale
from pipelines.espcn.common import DEFAULT_WEIGHTS, load_espcn
from pipelines.espcn.upscale import fast_model, png_bytes, upscale_precision
from tests.conftest import REPO

pytestmark = pytest.mark.precision


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return skimage.data.coffee()[100:160, 200:290]


def test_api_takes_pil_and_numpy_and_returns_the_same_kind(photo) -> None:
    out = upscale(Image.fromarray(photo))
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (270, 180)
    array = upscale(photo, weights="x2")
    assert array.dtype == np.uint8 and array.shape == (120, 180, 3)
    grey = upscale(photo[:, :, 0], weights=str(DEFAULT_WEIGHTS))
    assert grey.shape == (180, 270, 3)
    # an 8-bit image takes the whole-frame graph on ONNX Runtime, a float one the PyTorch colour steps
    as_float = upscale(photo.astype(np.float32) / 255).astype(int)
    assert np.abs(as_float - np.asarray(out, dtype=int)).max() <= 1


def test_api_output_is_the_network_with_bicubic_chroma(photo) -> None:
    """Within one 8-bit step of the scoring path (which differs only in its MATLAB-exact chroma kernel)."""
    net = load_espcn(DEFAULT_WEIGHTS, torch.device("cpu"))
    scored = super_resolve(net, photo.astype(np.float32) / 255, scale=3, channels=1, device=torch.device("cpu"))
    difference = np.abs(upscale(photo).astype(np.float64) - np.round(scored * 255))
    assert np.median(difference) <= 1 and difference.max() <= 24  # chroma kernels differ at edges


def test_api_self_ensemble_is_the_averaged_network_rounded_once(photo) -> None:
    net = load_espcn(DEFAULT_WEIGHTS, torch.device("cpu"))
    scored = super_resolve(net, photo.astype(np.float32) / 255, scale=3, channels=1, device=torch.device("cpu"),
                           ensemble=True)
    plus = upscale(photo, self_ensemble=True)
    difference = np.abs(plus.astype(np.float64) - np.round(scored * 255))
    assert np.median(difference) <= 1 and difference.max() <= 24  # chroma kernels differ at edges, as above
    assert not np.array_equal(plus, upscale(photo))
    assert np.asarray(upscale(Image.fromarray(photo), self_ensemble=True)).tolist() == plus.tolist()


def test_api_errors_name_the_fix(photo) -> None:
    with pytest.raises(UserError, match="x2, x3, x4"):
        upscale(photo, weights="x5")
    with pytest.raises(UserError, match="HxWx3"):
        upscale(np.zeros((4, 4, 2), np.uint8))


def test_png_writer_round_trips(photo) -> None:
    for level in (1, 9):
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(photo, level)))), photo)


def test_whole_frame_path_equals_the_eager_network(photo) -> None:
    net = load_espcn(DEFAULT_WEIGHTS, torch.device("cpu"))
    fast = FastESPCN(net)
    x = torch.from_numpy(photo[:, :, :1].astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        torch.testing.assert_close(fast(x), net(x), atol=1e-5, rtol=0)


def imported(modules: str) -> list[str]:
    """Which of matplotlib and PyAV a fresh interpreter has loaded after importing ``modules``."""
    code = f"import sys; import {modules}; print(','.join(sorted({{'matplotlib', 'av'}} & set(sys.modules))))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return [name for name in result.stdout.strip().split(",") if name]


def test_upscale_and_eval_import_neither_matplotlib_nor_pyav() -> None:
    assert imported("pipelines.espcn.upscale, pipelines.espcn.api, pipelines.espcn.evaluate") == []


def test_training_does_not_need_pyav() -> None:
    assert "av" not in imported("pipelines.espcn.train, pipelines.multiblock.train, inference.video")


@pytest.mark.parametrize(("fast", "pinned", "backend", "expected"), [
    (True, None, "strips", "bf16"), (False, None, "strips", "fp32"), (True, "fp32", "strips", "fp32"),
    (True, None, "channels_last", "fp32"), (True, "bf16", "strips", "bf16"),
])
def test_auto_precision_is_bf16_only_on_bf16_hardware_and_the_strips(monkeypatch, fast, pinned, backend,
                                                                     expected) -> None:
    monkeypatch.delenv(hardware.BF16_ENV, raising=False)
    monkeypatch.setattr(hardware, "_hardware_bf16", lambda: hardware.Bf16Support(True, fast))
    if pinned is None:
        monkeypatch.delenv(AUTO_ENV, raising=False)
    else:
        monkeypatch.setenv(AUTO_ENV, pinned)
    assert upscale_precision("auto", torch.device("cpu"), backend) == expected
    assert upscale_precision("fp32", torch.device("cpu"), backend) == "fp32"


def test_reduced_precision_where_it_cannot_run_is_one_line(monkeypatch) -> None:
    monkeypatch.delenv(hardware.BF16_ENV, raising=False)
    monkeypatch.setattr(hardware, "_hardware_bf16", lambda: hardware.Bf16Support(True, True))  # bf16 would run
    net = load_espcn(DEFAULT_WEIGHTS, torch.device("cpu"))
    settings = {"INFERENCE": "auto", "UPSCALE_PRECISION": "fp16"}
    with pytest.raises(UserError, match="UPSCALE_PRECISION=fp16: fp16 is for CUDA only"):
        fast_model(net, settings, torch.device("cpu"))
    with pytest.raises(UserError, match="bf16 inference is the CPU strip backend's"):
        fast_model(net, {"INFERENCE": "eager", "UPSCALE_PRECISION": "bf16"}, torch.device("cpu"))
    assert fast_model(net, {"INFERENCE": "auto", "UPSCALE_PRECISION": "auto"}, torch.device("cpu")).precision == "fp32"


def test_bf16_on_a_cpu_that_cannot_run_it_is_one_error_line_before_anything_is_written(tmp_path, photo) -> None:
    """The command line as a user types it, on a CPU without bf16 (simulated by the switch CI uses)."""
    Image.fromarray(photo).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(REPO / "espcn.py"), "upscale", str(tmp_path / "photo.png"),
                             "--out", str(out), "--set", "UPSCALE_PRECISION=bf16"], cwd=tmp_path,
                            capture_output=True, text=True, env={**os.environ, hardware.BF16_ENV: "off"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: UPSCALE_PRECISION=bf16: bf16 is switched off ({hardware.BF16_ENV}=off); use UPSCALE_PRECISION=fp32 "
        "(or auto, which picks fp32 here)"]
    assert not out.exists() or not any(out.iterdir())
