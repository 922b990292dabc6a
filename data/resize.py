"""MATLAB-compatible bicubic ``imresize``: the resize every SR paper's LR images and bicubic baselines use.

It follows MATLAB's imresize (method 'bicubic', the default antialiasing) step by step: the Keys cubic
kernel with a = -0.5; when downscaling, the kernel is stretched by 1/scale (antialiasing); output pixel x
(1-based) samples input coordinate u = x / scale + (1 - 1 / scale) / 2; the weights of each output pixel
are normalised to sum to 1; samples outside the image mirror back in symmetrically (edge pixel repeated);
the axis with the smaller scale is resized first. Pillow, OpenCV and scikit-image resize differently
(no antialiasing, other kernels or other borders), so their LR images and bicubic baselines do not match
the published ones.

Each axis is a sparse linear map given by (weights, indices), both (out_length, taps); ``resample_axis``
applies one as a sum over the few taps, vectorised over the whole image. ``data.degrade`` reuses it.

``imresize`` also takes a float torch tensor shaped (..., H, W) (channel axis -3, so NCHW batches work) and
resizes it on its own device with the same taps in the same order (equal to the numpy result within float
rounding); torch is imported only when a tensor is passed in, as in ``data.color``.
"""
from __future__ import annotations

import functools
import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

_KERNEL_WIDTH = 4.0  # the cubic kernel is non-zero on (-2, 2)


def imresize(img: Any, scale: float | None = None, output_shape: Sequence[int] | None = None) -> Any:
    """Bicubic resize of an HxW or HxWxC float image, as MATLAB ``imresize(img, scale)`` or
    ``imresize(img, [rows cols])``; or of a float torch tensor (..., H, W) on its device.

    With ``scale`` the output is ceil(scale * size) (MATLAB's rule) unless ``output_shape`` is also
    given; with only ``output_shape`` each axis uses scale = output / input. Output dtype = input dtype.
    """
    if _is_tensor(img):
        return _imresize_tensor(img, scale, output_shape)
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"imresize needs a float image (use data.io.to_float), got {img.dtype}")
    if scale is None and output_shape is None:
        raise ValueError("imresize needs scale or output_shape")
    in_shape = img.shape[:2]
    if output_shape is None:
        output_shape = tuple(math.ceil(scale * n) for n in in_shape)
    scales = (scale, scale) if scale is not None else tuple(np.divide(output_shape[:2], in_shape))
    for axis in np.argsort(scales, kind="stable"):  # smaller scale first, rows first on a tie (as MATLAB)
        weights, indices = _contributions(in_shape[axis], int(output_shape[axis]), float(scales[axis]))
        img = resample_axis(img, int(axis), weights, indices)
    return np.ascontiguousarray(img)


def _imresize_tensor(img: Any, scale: float | None, output_shape: Sequence[int] | None) -> Any:
    import torch

    if not img.is_floating_point() or img.dim() < 2:
        raise TypeError(f"imresize needs a float tensor (..., H, W), got {img.dtype} {tuple(img.shape)}")
    if scale is None and output_shape is None:
        raise ValueError("imresize needs scale or output_shape")
    in_shape = tuple(img.shape[-2:])
    if output_shape is None:
        output_shape = tuple(math.ceil(scale * n) for n in in_shape)
    scales = (scale, scale) if scale is not None else tuple(np.divide(output_shape[:2], in_shape))
    for axis in np.argsort(scales, kind="stable"):
        dim = img.dim() - 2 + int(axis)
        weights, indices = _contributions_cached(in_shape[axis], int(output_shape[axis]), float(scales[axis]))
        w = torch.as_tensor(weights, dtype=img.dtype, device=img.device)
        idx = torch.as_tensor(indices, device=img.device)
        shape = [1] * img.dim()
        shape[dim] = -1
        out = w[:, 0].view(shape) * img.index_select(dim, idx[:, 0])
        for k in range(1, w.shape[1]):
            out += w[:, k].view(shape) * img.index_select(dim, idx[:, k])
        img = out
    return img.contiguous()


@functools.lru_cache(maxsize=64)
def _contributions_cached(in_length: int, out_length: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    return _contributions(in_length, out_length, scale)


def _is_tensor(img: Any) -> bool:
    """True for a torch tensor, without importing torch when the caller never did."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(img, torch.Tensor)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    return (1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1) + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * (
        (ax > 1) & (ax <= 2)
    )


def _contributions(in_length: int, out_length: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's ``contributions``: weights and 0-based input indices, each (out_length, taps)."""
    stretch = min(scale, 1.0)  # antialiasing: widen the kernel by 1 / scale when downscaling
    width = _KERNEL_WIDTH / stretch
    u = np.arange(1, out_length + 1) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    indices = left[:, None] + np.arange(math.ceil(width) + 2)
    weights = stretch * _cubic(stretch * (u[:, None] - indices))
    weights /= weights.sum(axis=1, keepdims=True)
    used = np.any(weights != 0, axis=0)  # MATLAB drops the tap columns that are zero for every output
    return weights[:, used], mirror_indices(indices[:, used].astype(np.int64) - 1, in_length)


def mirror_indices(indices: np.ndarray, length: int) -> np.ndarray:
    """Fold 0-based indices into [0, length) by symmetric padding: -1 -> 0, -2 -> 1, length -> length - 1."""
    period = np.concatenate([np.arange(length), np.arange(length)[::-1]])
    return period[np.mod(indices, 2 * length)]


def resample_axis(img: np.ndarray, axis: int, weights: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """out[i] = sum_k weights[i, k] * img[indices[i, k]] along ``axis`` (a sparse matrix product)."""
    moved = np.moveaxis(img, axis, 0)
    shape = (-1,) + (1,) * (img.ndim - 1)
    weights = weights.astype(img.dtype)
    out = weights[:, 0].reshape(shape) * moved[indices[:, 0]]
    for k in range(1, weights.shape[1]):
        out += weights[:, k].reshape(shape) * moved[indices[:, k]]
    return np.moveaxis(out, 0, axis)
