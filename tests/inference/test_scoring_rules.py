"""The scoring protocol, pinned by values a changed line would move: shave = scale on every side of a scaled
image, and the bicubic baseline made with MATLAB's imresize (its kernel is pinned in tests/data/test_resize.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.data
import torch

from data.degrade import bicubic_downscale, modcrop
from data.io import to_float
from data.resize import imresize
from inference import scoring
from inference.metrics import psnr, ssim

SCALE = 3


def framed(ref: np.ndarray, width: int) -> np.ndarray:
    """``ref`` with every pixel of a ``width``-pixel frame (all four sides) wrong."""
    img = ref.copy()
    for region in (np.s_[:width], np.s_[-width:], np.s_[:, :width], np.s_[:, -width:]):
        img[region] = 1.0 - img[region]
    return img


@pytest.mark.parametrize("space", ["y", "rgb"])
def test_shave_removes_exactly_that_many_pixels_from_every_side(space: str):
    ref = np.random.default_rng(3).random((30, 26, 3))
    img = framed(ref, SCALE)
    assert psnr(img, ref, space=space, shave=SCALE) == math.inf
    assert ssim(img, ref, space=space, shave=SCALE) == pytest.approx(1.0, abs=1e-12)
    assert math.isfinite(psnr(img, ref, space=space, shave=SCALE - 1))
    assert ssim(img, ref, space=space, shave=SCALE - 1) < 1 - 1e-5  # the frame is far out in the window


@pytest.fixture
def hr_images() -> list[tuple[str, np.ndarray]]:
    return [("astronaut", skimage.data.astronaut()[:61, :47]), ("coffee", skimage.data.coffee()[:40, :52])]


def test_scaled_sets_shave_scale_pixels_for_the_model_and_for_bicubic(monkeypatch, hr_images):
    """A 'model' that returns HR with a wrong frame of ``scale`` pixels scores perfectly; without shave it
    does not. The bicubic row is MATLAB bicubic up of MATLAB bicubic down, shaved the same way."""
    outputs = {}  # by LR size: the images may be scored in parallel threads, in any order
    for _name, image in hr_images:
        hr = modcrop(to_float(image), SCALE)
        outputs[(hr.shape[0] // SCALE, hr.shape[1] // SCALE)] = torch.from_numpy(framed(hr, SCALE)).permute(
            2, 0, 1)[None].float()
    monkeypatch.setattr(scoring, "super_resolve_tensor", lambda _model, lr, **_kwargs: outputs[tuple(lr.shape[-2:])])
    scores = scoring.score_scaled_set(torch.nn.Identity(), hr_images, scale=SCALE, channels=1,
                                      device=torch.device("cpu"))
    assert scores["model"]["psnr_y"] > 300 and scores["model"]["psnr_rgb"] > 300  # equal but for float rounding
    assert scores["model"]["psnr_y_noshave"] < 30
    expected = np.mean([psnr(np.clip(imresize(bicubic_downscale(hr, SCALE), scale=SCALE), 0, 1), hr, space="y",
                             shave=SCALE) for hr in (modcrop(to_float(image), SCALE) for _name, image in hr_images)])
    # within float32 rounding: the tensor resize sums its taps in another order than the numpy one
    assert scores["bicubic"]["psnr_y"] == pytest.approx(expected, abs=1e-6)
