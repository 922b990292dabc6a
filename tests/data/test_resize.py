"""Reference values are derived by hand from MATLAB's imresize algorithm (contributions + cubic):

cubic(x) = 1.5|x|^3 - 2.5|x|^2 + 1 on |x| <= 1, -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 on 1 < |x| <= 2.
Output pixel x (1-based) reads input coordinate u = x / s + (1 - 1 / s) / 2. Downscaling (s < 1) uses the
antialiased kernel s * cubic(s * d). Weights are normalised; index 0 mirrors to 1, n + 1 to n.
"""
from __future__ import annotations

import numpy as np
import pytest

from data.resize import imresize, mirror_indices


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The 1-D linear map imresize applies along the rows, read off by resizing unit vectors."""
    columns = [imresize(np.eye(n_in)[:, j : j + 1], output_shape=(n_out, 1))[:, 0] for j in range(n_in)]
    return np.stack(columns, axis=1)


def test_down_4_to_2_by_hand():
    # s = 1/2, u = 1.5: weights 0.5 * cubic(0.5 * d) for d = 3.5 .. -3.5 are
    # (-3, -9, 29, 111, 111, 29, -9, -3) / 256 on input positions (3, 2, 1, 1, 2, 3, 4, 4) after mirroring;
    # their sum is already 1.
    expected = np.array([[140, 102, 26, -12], [-12, 26, 102, 140]]) / 256
    np.testing.assert_allclose(resize_matrix(4, 2), expected, atol=1e-14)
    np.testing.assert_allclose(imresize(np.array([[1.0], [2], [4], [8]]), 0.5)[:, 0], [1.375, 6.125])


def test_down_6_to_2_by_hand():
    # s = 1/3, u = 2: (1/3) cubic(d / 3) for |d| = 0..6 is (27, 21, 9, 0, -2, -1, 0) / 81, on positions
    # i = 2 - d; i = -3, -2 mirror to 4, 3 and i = 6, 7 to 6, 6.
    row = np.array([30, 27, 19, 8, 0, -3]) / 81
    np.testing.assert_allclose(resize_matrix(6, 2), np.stack([row, row[::-1]]), atol=1e-14)


def test_up_2_to_4_by_hand():
    # s = 2, u = 0.75, 1.25, 1.75, 2.25. For u = 0.75 the taps at d = 1.75, 0.75, -0.25, -1.25 weigh
    # (-3, 29, 111, -9) / 128 on positions (2, 1, 1, 2): 70/64 of x1 and -6/64 of x2.
    expected = np.array([[70, -6], [51, 13], [13, 51], [-6, 70]]) / 64
    np.testing.assert_allclose(resize_matrix(2, 4), expected, atol=1e-14)
    expected_row = [-0.09375, 0.203125, 0.796875, 1.09375]
    np.testing.assert_allclose(imresize(np.array([[0.0, 1.0]]), 2)[0], expected_row)


def test_mirror_indices():
    assert mirror_indices(np.arange(-3, 7), 3).tolist() == [2, 1, 0, 0, 1, 2, 2, 1, 0, 0]


def test_is_separable_and_channelwise():
    rng = np.random.default_rng(0)
    img = rng.random((9, 12, 3))
    out = imresize(img, output_shape=(5, 20))
    rows, cols = resize_matrix(9, 5), resize_matrix(12, 20)
    for c in range(3):
        np.testing.assert_allclose(out[:, :, c], rows @ img[:, :, c] @ cols.T, atol=1e-12)
        np.testing.assert_allclose(out[:, :, c], imresize(img[:, :, c], output_shape=(5, 20)), atol=1e-12)


@pytest.mark.parametrize("scale", [1 / 4, 1 / 3, 0.5, 0.7, 1.0, 2.0, 3.0, 4.0])
def test_constant_stays_constant(scale: float):
    out = imresize(np.full((23, 18, 3), 0.37), scale)
    assert out.shape == (int(np.ceil(23 * scale)), int(np.ceil(18 * scale)), 3)
    np.testing.assert_allclose(out, 0.37, atol=1e-12)


@pytest.mark.parametrize("scale", [2, 3, 4, 1 / 2, 1 / 3])
def test_linear_ramp_is_exact_away_from_borders(scale: float):
    """Keys' kernel reproduces linear functions; for integer factors the taps are symmetric about u."""
    n = 48
    ramp = np.arange(1, n + 1, dtype=np.float64)[:, None]  # value = 1-based coordinate
    out = imresize(ramp, output_shape=(round(n * scale), 1))[:, 0]
    x = np.arange(1, len(out) + 1)
    u = x / scale + 0.5 * (1 - 1 / scale)
    inside = (u - 2 / min(scale, 1) >= 1) & (u + 2 / min(scale, 1) <= n)
    assert inside.sum() >= len(out) // 2
    np.testing.assert_allclose(out[inside], u[inside], atol=1e-12)


def test_shapes_dtype_and_identity():
    img = np.random.default_rng(1).random((255, 10)).astype(np.float32)
    assert imresize(img, 1 / 3).shape == (85, 4)
    assert imresize(img, 1 / 3).dtype == np.float32
    np.testing.assert_allclose(imresize(img, 1.0), img, atol=1e-6)
    with pytest.raises(TypeError):
        imresize(np.zeros((4, 4), np.uint8), 2)


@pytest.mark.parametrize(("scale", "size", "out"), [(3, (34, 29), None), (3, (34, 29), (100, 86)), (2, (4, 3), None),
                                                    (1 / 3, (90, 111), (30, 37)), (1 / 4, (9, 7), (2, 1)),
                                                    (4, (2, 3), None), (1 / 2, (37, 41), (18, 20))])
def test_integer_factors_take_the_strided_path_and_equal_the_numpy_resize(scale, size, out) -> None:
    """x2/x3/x4 and their inverses: the tensor path sums strided views (no gather per tap); borders mirror
    as MATLAB's, also where the image is smaller than the kernel and outputs are not a multiple of the factor."""
    torch = pytest.importorskip("torch")
    from data import resize

    image = np.random.default_rng(1).random((*size, 3)).astype(np.float32)
    expected = imresize(image, scale=scale, output_shape=out)
    lengths = zip(size, expected.shape[:2], strict=True)
    assert all(resize._periodic_cached(n, m, float(scale)) is not None for n, m in lengths)
    got = imresize(torch.from_numpy(image).permute(2, 0, 1)[None], scale=scale, output_shape=out)
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), expected, atol=1e-6, rtol=0)


def test_other_factors_are_not_taken_for_periodic() -> None:
    from data import resize

    assert resize._periodic_cached(40, 100, 2.5) is None
    assert resize._periodic_cached(40, 27, 2 / 3) is None
