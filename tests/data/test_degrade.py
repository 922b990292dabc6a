from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import UserError
from data.color import rgb_to_y
from data.datasets import load_named_set
from data.degrade import bicubic_downscale, bicubic_upscale, gaussian_downscale, modcrop
from data.io import to_float
from data.resize import imresize

RNG = np.random.default_rng(0)


def test_modcrop_keeps_top_left():
    img = RNG.random((13, 17, 3))
    np.testing.assert_array_equal(modcrop(img, 4), img[:12, :16])
    assert modcrop(img, 1).shape == img.shape
    for bad in (0, 2.0, True):
        with pytest.raises(UserError, match="scale"):
            modcrop(img, bad)


def test_bicubic_down_and_up():
    hr = RNG.random((14, 19, 3))
    lr = bicubic_downscale(hr, 3)
    assert lr.shape == (4, 6, 3)
    np.testing.assert_allclose(lr, imresize(hr[:12, :18], 1 / 3), atol=1e-12)
    assert bicubic_upscale(lr, 3).shape == (12, 18, 3)
    np.testing.assert_allclose(bicubic_downscale(np.full((12, 12), 0.4), 4), 0.4, atol=1e-12)
    with pytest.raises(TypeError):
        bicubic_downscale(np.zeros((4, 4, 3), np.uint8), 2)


def test_sigma_zero_point_samples_the_cell_centre():
    hr = RNG.random((12, 18, 3))
    np.testing.assert_array_equal(gaussian_downscale(hr, 3, sigma=0), hr[1::3, 1::3])  # odd r: the pixel
    quads = (hr[0::2, 0::2] + hr[1::2, 0::2] + hr[0::2, 1::2] + hr[1::2, 1::2]) / 4  # even r: 2x2 mean
    np.testing.assert_allclose(gaussian_downscale(hr, 2, sigma=0), quads, atol=1e-15)
    np.testing.assert_allclose(gaussian_downscale(hr, 2, sigma=1e-3), quads, atol=1e-12)  # no underflow


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_lr_pixel_is_centred_on_its_cell(scale: int):
    """A linear ramp, blurred by a symmetric kernel, reads back the cell centre r*i + (r - 1) / 2."""
    n = 16 * scale
    ramp = np.broadcast_to(np.arange(n, dtype=np.float64)[:, None], (n, 8 * scale))
    lr = gaussian_downscale(ramp, scale, sigma=1.2)
    centres = scale * np.arange(16) + (scale - 1) / 2
    inside = (centres > 6) & (centres < n - 7)  # the 4-sigma kernel stays inside the image
    np.testing.assert_allclose(lr[inside, 3], centres[inside], atol=1e-12)
    np.testing.assert_allclose(gaussian_downscale(np.full((n, n), 0.8), scale, 1.2), 0.8, atol=1e-12)


def test_matches_brute_force_gaussian_inside():
    sigma, scale = 1.5, 3
    hr = RNG.random((45, 48))
    lr = gaussian_downscale(hr, scale, sigma)
    assert lr.shape == (15, 16)
    y, x = np.mgrid[0:45, 0:48]
    for i, j in [(5, 5), (7, 9), (8, 10)]:
        cy, cx = scale * i + 1, scale * j + 1
        g = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))
        assert abs(lr[i, j] - (g * hr).sum() / g.sum()) < 1e-5


def test_default_sigma_and_errors():
    hr = RNG.random((12, 12, 3))
    np.testing.assert_array_equal(gaussian_downscale(hr, 3), gaussian_downscale(hr, 3, sigma=1.0))
    assert gaussian_downscale(hr[:11, :10], 2).shape == (5, 5, 3)
    with pytest.raises(UserError, match="sigma"):
        gaussian_downscale(hr, 2, sigma=-1)


def test_set5_bicubic_baseline_matches_published(datasets_root: Path):
    """Bicubic x3 on Set5, Y channel, shave 3: 30.39 dB in SRCNN/ESPCN-era tables (MATLAB imresize)."""
    scores = []
    for _, image in load_named_set(datasets_root, "Set5"):
        y = modcrop(np.round(rgb_to_y(to_float(image)) * 255) / 255, 3)  # MATLAB: Y of the uint8 image
        sr = np.round(np.clip(bicubic_upscale(bicubic_downscale(y, 3), 3), 0, 1) * 255) / 255
        scores.append(10 * np.log10(1 / np.mean((sr - y)[3:-3, 3:-3] ** 2)))
    assert abs(np.mean(scores) - 30.39) < 0.005
