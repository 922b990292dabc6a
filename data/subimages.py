"""ESPCN training sub-images: aligned LR patches and pre-shuffled HR targets.

The paper trains on 17r x 17r HR sub-images taken with a stride of (17 - sum(f mod 2)) * r = 14r for its
filter sizes f = (5, 3, 3), so that the network's valid outputs tile the image without gaps.

The whole (modcropped) image is degraded once and aligned LR/HR crops are cut from the results, instead of
degrading each HR crop on its own: every LR patch is then exactly a piece of the LR image the network sees
at test time (its border pixels saw real neighbours through the blur, not mirrored padding), and the
overlapping crops are not blurred again and again.

Targets are pixel-unshuffled, (r*r*C, 17, 17) per sub-image, so a loss can compare them with the last
convolution's output directly: ``torch.nn.functional.pixel_shuffle(target, r)`` is the HR crop.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from core.errors import UserError
from data.degrade import gaussian_downscale, modcrop

Degrade = Callable[[np.ndarray, int], np.ndarray]
PAPER_FILTERS = (5, 3, 3)


def paper_stride(size: int = 17, filters: tuple[int, ...] = PAPER_FILTERS) -> int:
    """The paper's LR stride, size - sum(f mod 2): 14 for 17 and (5, 3, 3)."""
    return size - sum(f % 2 for f in filters)


def grid_count(lr_height: int, lr_width: int, size: int, step: int) -> int:
    """How many sub-images ``extract_subimages`` cuts from an LR image of this size (LR stride ``step``)."""
    if min(lr_height, lr_width) < size:
        return 0
    return ((lr_height - size) // step + 1) * ((lr_width - size) // step + 1)


def extract_subimages(
    hr: np.ndarray,
    scale: int,
    size: int = 17,
    stride: int | None = None,
    degrade: Degrade | None = None,
    sigma: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut one float HxWxC (C = 1 or 3; HxW means C = 1) HR image into ESPCN training pairs.

    Returns ``(lr, target)``: float32 arrays (N, C, size, size) and (N, r*r*C, size, size), the HR crops
    being size*r square. ``stride`` is in HR pixels (default ``paper_stride(size) * r``) and must be a
    multiple of r. ``degrade(hr, r)`` makes the LR image (default: ``gaussian_downscale`` with ``sigma``).
    Crops start at the top-left; an image smaller than one crop gives N = 0.
    """
    stride = paper_stride(size) * scale if stride is None else stride
    if stride < scale or stride % scale:
        raise UserError(f"sub-image stride {stride} must be a positive multiple of the scale {scale}")
    if not np.issubdtype(hr.dtype, np.floating):
        raise TypeError(f"expected a float image in [0, 1] (use data.io.to_float), got {hr.dtype}")
    degrade = degrade or functools.partial(gaussian_downscale, sigma=sigma)
    hr = modcrop(hr.astype(np.float32, copy=False), scale)
    if hr.ndim == 2:
        hr = hr[:, :, None]
    channels = hr.shape[2]
    if min(hr.shape[:2]) < size * scale:  # not even one sub-image fits
        no_lr = np.zeros((0, channels, size, size), np.float32)
        return no_lr, np.zeros((0, channels * scale * scale, size, size), np.float32)
    lr = np.asarray(degrade(hr, scale), dtype=np.float32)
    if lr.shape != (hr.shape[0] // scale, hr.shape[1] // scale, hr.shape[2]):
        raise ValueError(f"degrade gave LR shape {lr.shape} for HR {hr.shape} at scale {scale}")
    step = stride // scale
    lr_patches = sliding_window_view(lr, (size, size), axis=(0, 1))[::step, ::step]  # (Y, X, C, s, s)
    hr_patches = sliding_window_view(hr, (size * scale, size * scale), axis=(0, 1))[::stride, ::stride]
    lr_out = lr_patches.reshape(-1, channels, size, size)
    # (Y, X, C, size*r, size*r) -> (N, C, size, r, size, r) -> (N, C, r, r, size, size) -> (N, C*r*r, ...)
    shuffled = hr_patches.reshape(-1, channels, size, scale, size, scale).transpose(0, 1, 3, 5, 2, 4)
    target = shuffled.reshape(-1, channels * scale * scale, size, size)
    return np.ascontiguousarray(lr_out), np.ascontiguousarray(target)
