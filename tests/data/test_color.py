from __future__ import annotations

import numpy as np
import pytest
import torch

from data.color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb

# MATLAB rgb2ycbcr on double RGB in [0, 1], times 255: offset [16 128 128] + the BT.601 matrix columns.
KNOWN = {
    (0, 0, 0): (16.0, 128.0, 128.0),
    (1, 1, 1): (235.0, 128.0, 128.0),
    (1, 0, 0): (81.481, 90.203, 240.0),
    (0, 1, 0): (144.553, 53.797, 34.214),
    (0, 0, 1): (40.966, 240.0, 109.786),
}


def test_known_values_match_matlab():
    rgb = np.array([list(KNOWN)], dtype=np.float64)  # 1 x 5 x 3
    expected = np.array([list(KNOWN.values())]) / 255
    np.testing.assert_allclose(rgb_to_ycbcr(rgb), expected, atol=1e-12)
    np.testing.assert_allclose(ycbcr_to_rgb(expected), rgb, atol=1e-12)
    np.testing.assert_allclose(rgb_to_y(rgb), expected[:, :, 0], atol=1e-12)


def test_round_trip_and_dtype():
    rgb = np.random.default_rng(0).random((6, 7, 3))
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-12)
    single = rgb.astype(np.float32)
    assert rgb_to_ycbcr(single).dtype == np.float32
    assert rgb_to_y(single).shape == (6, 7) and rgb_to_y(single).dtype == np.float32
    y = rgb_to_y(single)
    assert y.min() >= 16 / 255 - 1e-6 and y.max() <= 235 / 255 + 1e-6


def test_torch_batches_match_numpy():
    rgb = np.random.default_rng(1).random((2, 5, 4, 3)).astype(np.float32)
    batch = torch.from_numpy(rgb).permute(0, 3, 1, 2)  # N, 3, H, W
    ycbcr = rgb_to_ycbcr(batch)
    assert isinstance(ycbcr, torch.Tensor) and ycbcr.shape == (2, 3, 5, 4) and ycbcr.dtype == torch.float32
    for n in range(2):
        np.testing.assert_allclose(ycbcr[n].permute(1, 2, 0).numpy(), rgb_to_ycbcr(rgb[n]), atol=1e-6)
    y = rgb_to_y(batch)
    assert y.shape == (2, 1, 5, 4)
    np.testing.assert_allclose(y[:, 0].numpy(), ycbcr[:, 0].numpy(), atol=1e-6)
    torch.testing.assert_close(ycbcr_to_rgb(ycbcr), batch, atol=1e-5, rtol=0)
    assert rgb_to_y(batch[0]).shape == (1, 5, 4)  # a single CHW image works too


def test_rejects_integer_and_wrong_shape():
    with pytest.raises(ValueError, match="to_float"):
        rgb_to_ycbcr(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError):
        rgb_to_y(np.zeros((2, 2, 4)))
    with pytest.raises(ValueError):
        rgb_to_y(torch.zeros(1, 4, 2, 2))
