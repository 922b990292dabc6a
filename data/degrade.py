"""Degradations that make LR images from HR images (float HxW or HxWxC in [0, 1] in, float out).

Both downscalers first ``modcrop`` the HR image, so LR pixel (i, j) always stands for the HR cell
[r*i, r*i + r) x [r*j, r*j + r) and an SR output of r times the LR size lines up with the cropped HR image.
"""
from __future__ import annotations

import math

import numpy as np

from core.errors import UserError
from data.resize import imresize, mirror_indices, resample_axis


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Drop the last rows and columns so height and width are multiples of ``scale`` (MATLAB modcrop)."""
    _check_scale(scale)
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def bicubic_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """modcrop, then MATLAB ``imresize(hr, 1/scale)`` (bicubic, antialiased): the benchmark LR images."""
    hr = modcrop(_float(hr), scale)
    return imresize(hr, scale=1 / scale, output_shape=(hr.shape[0] // scale, hr.shape[1] // scale))


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(lr, scale)``: the bicubic baseline (not clipped)."""
    _check_scale(scale)
    return imresize(_float(lr), scale=scale)


def gaussian_downscale(hr: np.ndarray, scale: int, sigma: float | None = None) -> np.ndarray:
    """ESPCN's degradation: Gaussian blur (std ``sigma`` in HR pixels, each channel), then keep every
    ``scale``-th pixel.

    Sampling phase: LR pixel i is the blurred HR image at the centre of its HR cell, r*i + (r - 1) / 2
    (0-based), so LR and HR grids share their centre like a box average or MATLAB's imresize. For odd r
    that is an HR pixel; for even r it lies between pixels, and the kernel is centred there (shifted by
    half a pixel). sigma = 0 is plain point sampling of that centre: the pixel itself for odd r, the mean
    of the central 2x2 pixels for even r (the limit of the Gaussian as sigma -> 0). The paper gives no
    sigma; None means (r - 1) / 2, scikit-image's anti-aliasing default. The kernel is truncated at 4
    sigma and normalised; borders are mirrored (symmetric), as in ``imresize``.
    """
    hr = modcrop(_float(hr), scale)
    sigma = (scale - 1) / 2 if sigma is None else float(sigma)
    if not sigma >= 0:
        raise UserError(f"Gaussian blur sigma must be >= 0, got {sigma}; set a non-negative sigma")
    for axis in (0, 1):
        weights, indices = _gaussian_taps(hr.shape[axis], scale, sigma)
        hr = resample_axis(hr, axis, weights, indices)
    return np.ascontiguousarray(hr)


def _gaussian_taps(length: int, scale: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights and input indices, each (length // scale, taps), of the blur sampled at the cell centres."""
    centres = scale * np.arange(length // scale) + (scale - 1) / 2
    radius = math.ceil(4 * sigma) + 1
    taps = 2 * radius + 1 + (scale % 2 == 0)  # symmetric about the centre, also a half-integer one
    indices = np.floor(centres - radius).astype(np.int64)[:, None] + np.arange(taps)
    if sigma > 0:
        d2 = (indices - centres[:, None]) ** 2  # minus the row minimum below: no underflow for tiny sigma
        weights = np.exp(-0.5 * (d2 - d2.min(axis=1, keepdims=True)) / sigma**2)
    else:
        weights = np.maximum(0.0, 1.0 - np.abs(indices - centres[:, None]))  # linear interpolation
    weights /= weights.sum(axis=1, keepdims=True)
    return weights, mirror_indices(indices, length)


def _check_scale(scale: int) -> None:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise UserError(f"scale must be a whole number >= 1, got {scale!r}; use 2, 3 or 4")


def _float(img: np.ndarray) -> np.ndarray:
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"expected a float image in [0, 1] (use data.io.to_float), got {img.dtype}")
    return img
