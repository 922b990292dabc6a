"""Scoring in torch equals the numpy pipeline it replaced; the bicubic rows are cached; the 8-bit protocol rounds
what BasicSR rounds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch

import inference.scoring as scoring
from data.color import rgb_to_ycbcr, ycbcr_to_rgb
from data.degrade import bicubic_downscale, bicubic_upscale, modcrop
from data.io import to_float
from data.resize import imresize
from inference.scoring import BaselineCache, score_scaled_images, score_scaled_set
from models.espcn import ESPCN

from . import metrics_reference as reference

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def images() -> list[tuple[str, np.ndarray]]:
    return [("astronaut", skimage.data.astronaut()[:100, :125]), ("coffee", skimage.data.coffee()[50:131, :97])]


@pytest.fixture(scope="module")
def net() -> ESPCN:
    torch.manual_seed(0)
    return ESPCN(scale=3, channels=1).eval()


@pytest.mark.parametrize(("scale", "shape"), [(1 / 3, None), (3, None), (0.5, (37, 41)), (2.5, (101, 80))])
def test_torch_imresize_equals_numpy(scale, shape) -> None:
    image = to_float(skimage.data.astronaut()[:90, :111])
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()
    expected = imresize(image, scale=scale, output_shape=shape)
    got = imresize(tensor, scale=scale, output_shape=shape)
    assert got.dtype == torch.float32 and got.shape == (1, 3, *expected.shape[:2])
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), expected, atol=1e-6, rtol=0)
    with pytest.raises(TypeError, match="float"):
        imresize(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), scale=2)


def numpy_scores(net: ESPCN, image: np.ndarray, scale: int) -> dict[str, dict[str, float]]:
    """The pipeline as it was before it moved to torch: numpy resize and colour, scipy metrics."""
    hr = modcrop(to_float(image), scale)
    lr = bicubic_downscale(hr, scale)
    ycbcr = rgb_to_ycbcr(lr)
    with torch.no_grad():
        y = net(torch.from_numpy(np.ascontiguousarray(ycbcr[..., :1].transpose(2, 0, 1)))[None])[0].numpy()
    chroma = imresize(ycbcr[..., 1:], scale=scale)
    outputs = {"model": np.clip(ycbcr_to_rgb(np.concatenate([y.transpose(1, 2, 0), chroma], axis=2)), 0, 1),
               "bicubic": np.clip(bicubic_upscale(lr, scale), 0, 1)}
    return {method: {"psnr_y": reference.psnr(out, hr, space="y", shave=scale),
                     "ssim_y": reference.ssim(out, hr, space="y", shave=scale),
                     "psnr_rgb": reference.psnr(out, hr, shave=scale),
                     "ssim_rgb": reference.ssim(out, hr, shave=scale),
                     "psnr_y_noshave": reference.psnr(out, hr, space="y")} for method, out in outputs.items()}


def test_scores_equal_the_numpy_pipeline(net, images) -> None:
    rows = score_scaled_images(net, images, scale=3, channels=1, device=CPU)
    assert [(r.name, r.height, r.width) for r in rows] == [("astronaut", 99, 123), ("coffee", 81, 96)]
    for row, (name, image) in zip(rows, images, strict=True):
        expected = numpy_scores(net, image, 3)
        for method in ("model", "bicubic"):
            for key, value in expected[method].items():
                assert row.metrics[method][key] == pytest.approx(value, abs=1e-4), (name, method, key)


def test_bicubic_rows_are_computed_once_per_set_scale_and_protocol(net, images, tmp_path: Path, monkeypatch):
    calls = []
    original = scoring.bicubic_metrics
    monkeypatch.setattr(scoring, "bicubic_metrics", lambda *a: calls.append(1) or original(*a))
    cache = BaselineCache(tmp_path / "cache")
    first = score_scaled_set(net, images, scale=3, channels=1, device=CPU, cache=cache)
    assert len(calls) == 2 and len(list((tmp_path / "cache").glob("bicubic-x3-float-*.json"))) == 1
    again = score_scaled_set(net, images, scale=3, channels=1, device=CPU, cache=BaselineCache(tmp_path / "cache"))
    assert len(calls) == 2 and again == first  # read back from the file by a new cache object
    score_scaled_set(net, images, scale=3, channels=1, device=CPU, cache=cache, eight_bit=True)
    score_scaled_set(net, images[:1], scale=3, channels=1, device=CPU, cache=cache)
    assert len(calls) == 5  # another protocol, another set: computed


def test_eight_bit_protocol_rounds_lr_and_outputs(net, images) -> None:
    row = score_scaled_images(net, images[:1], scale=3, channels=1, device=CPU, eight_bit=True)[0]
    hr = modcrop(to_float(images[0][1]), 3)
    lr8 = np.round(np.clip(bicubic_downscale(hr, 3), 0, 1) * 255) / 255
    bicubic8 = np.round(np.clip(bicubic_upscale(lr8.astype(np.float32), 3), 0, 1) * 255) / 255
    assert row.metrics["bicubic"]["psnr_y_8bit"] == pytest.approx(
        reference.psnr(bicubic8, hr, space="y", shave=3), abs=1e-4)
    assert row.metrics["bicubic"]["psnr_y_8bit"] != pytest.approx(row.metrics["bicubic"]["psnr_y"], abs=1e-3)
    assert set(row.metrics["model"]) >= {"psnr_y_8bit", "ssim_y_8bit", "psnr_y", "ssim_rgb"}


def test_images_scored_one_per_thread_equal_one_thread(net, images) -> None:
    """With several PyTorch threads the images run in parallel workers; rows keep their order and numbers."""
    many = images * 3
    threads = torch.get_num_threads()
    seen: list[str] = []
    try:
        torch.set_num_threads(1)
        one = score_scaled_images(net, many, scale=3, channels=1, device=CPU)
        torch.set_num_threads(3)
        parallel = score_scaled_images(net, many, scale=3, channels=1, device=CPU,
                                       on_output=lambda name, sr: seen.append(name))
    finally:
        torch.set_num_threads(threads)
    assert [r.name for r in parallel] == [name for name, _ in many] and sorted(seen) == sorted(r.name for r in one)
    for a, b in zip(one, parallel, strict=True):
        for method in ("model", "bicubic"):
            for key, value in a.metrics[method].items():
                assert b.metrics[method][key] == pytest.approx(value, abs=1e-9), (a.name, method, key)
