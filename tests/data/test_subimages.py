from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.errors import UserError
from data.degrade import bicubic_downscale, gaussian_downscale
from data.subimages import extract_subimages, grid_count, paper_stride

RNG = np.random.default_rng(0)


def test_paper_stride():
    assert paper_stride() == 14  # 17 - (5 % 2 + 3 % 2 + 3 % 2)
    assert paper_stride(17, (9, 5, 5)) == 14 and paper_stride(17, (4, 4)) == 17


@pytest.mark.parametrize(("shape", "scale", "count"), [((100, 90, 3), 3, 2), ((150, 200, 3), 2, 30),
                                                       ((204, 136, 1), 4, 6)])
def test_count_and_shapes(shape: tuple[int, int, int], scale: int, count: int):
    # 100x90 at x3: modcrop 99x90, LR 33x30, positions (0, 14) x (0,) -> 2
    # 150x200 at x2: LR 75x100, 1 + 58 // 14 = 5 rows, 1 + 83 // 14 = 6 columns -> 30
    # 204x136 at x4: LR 51x34, 1 + 34 // 14 = 3 rows, 1 + 17 // 14 = 2 columns -> 6
    hr = RNG.random(shape).astype(np.float32)
    lr, target = extract_subimages(hr, scale, sigma=1.0)
    channels = shape[2]
    assert lr.shape == (count, channels, 17, 17) and lr.dtype == np.float32
    assert target.shape == (count, channels * scale * scale, 17, 17) and target.dtype == np.float32
    assert grid_count(shape[0] // scale, shape[1] // scale, 17, 14) == count


def test_alignment_with_pixel_shuffle_and_whole_image_lr():
    scale, sigma = 3, 1.0
    hr = RNG.random((100, 90, 3)).astype(np.float32)
    lr, target = extract_subimages(hr, scale, sigma=sigma)
    whole_lr = gaussian_downscale(hr, scale, sigma)
    crops = [(0, 0), (14, 0)]  # LR top-left corners, row-major
    shuffled = F.pixel_shuffle(torch.from_numpy(target), scale).numpy()
    for n, (y, x) in enumerate(crops):
        hr_crop = hr[y * scale : (y + 17) * scale, x * scale : (x + 17) * scale]
        np.testing.assert_array_equal(shuffled[n].transpose(1, 2, 0), hr_crop)
        np.testing.assert_allclose(lr[n].transpose(1, 2, 0), whole_lr[y : y + 17, x : x + 17], atol=1e-6)


def test_grey_input_custom_degrade_and_stride():
    hr = RNG.random((80, 80)).astype(np.float32)
    lr, target = extract_subimages(hr, 2, size=10, stride=20, degrade=bicubic_downscale)
    assert lr.shape == (16, 1, 10, 10) and target.shape == (16, 4, 10, 10)  # LR 40x40, step 10 -> 4 x 4
    np.testing.assert_allclose(lr[5, 0], bicubic_downscale(hr, 2)[10:20, 10:20], atol=1e-6)
    np.testing.assert_array_equal(target[5, 2], hr[21:40:2, 20:40:2])  # channel i*r + j = pixel (1, 0)


def test_small_image_and_bad_stride():
    lr, target = extract_subimages(np.zeros((30, 60, 3), np.float32), 2, sigma=0.5)
    assert lr.shape == (0, 3, 17, 17) and target.shape == (0, 12, 17, 17)
    assert grid_count(15, 30, 17, 14) == 0
    with pytest.raises(UserError, match="stride"):
        extract_subimages(np.zeros((60, 60, 3), np.float32), 3, stride=40)
    with pytest.raises(TypeError):
        extract_subimages(np.zeros((60, 60, 3), np.uint8), 3)
