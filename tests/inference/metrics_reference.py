"""The numpy/scipy PSNR and SSIM that ``inference.metrics`` replaced, kept as the tests' oracle (float64,
scipy ``correlate1d``). Not used by the code.

PSNR and SSIM, one function each, whose keyword arguments name the measuring protocol.

- ``space``: ``'rgb'`` (all three channels) or ``'y'`` (luma, ITU-R BT.601 as MATLAB's rgb2ycbcr, via
  ``data.color.rgb_to_y``; a single-channel input is taken as Y already). Y is scored in [0, 1] units
  (16..235 scaled by 1/255), which gives the same numbers as BasicSR/EDSR scoring Y*255 with range 255.
- ``shave``: pixels cropped from every side before scoring (benchmarks: shave = scale).
- ``crop``: keep only the top-left ``crop`` x ``crop`` pixels at most (the multiblock report: 1500).
- ``data_range``: the value of white in the inputs (1.0 for float images, 255 for 8-bit ones).

Inputs: numpy HxWxC (or HxW) arrays, or torch tensors (C,H,W) / (1,C,H,W), C = 3 or 1.
SSIM follows Wang et al. 2004 (MATLAB ssim_index.m, as BasicSR): 11x11 Gaussian window, sigma 1.5,
K1 = 0.01, K2 = 0.03, 'valid' filtering, mean of the map, channel means averaged; no downsampling.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d

from data.color import rgb_to_y

WINDOW_RADIUS = 5


def psnr(img, ref, *, space: str = "rgb", shave: int = 0, data_range: float = 1.0,
         crop: int | None = None) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` for identical images."""
    a, b, peak = _prepare(img, ref, space, shave, data_range, crop)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak**2 / mse)


def ssim(img, ref, *, space: str = "rgb", shave: int = 0, data_range: float = 1.0,
         crop: int | None = None) -> float:
    """Structural similarity (Wang et al. 2004), mean over the 'valid' map and over channels."""
    a, b, peak = _prepare(img, ref, space, shave, data_range, crop)
    if min(a.shape[:2]) <= 2 * WINDOW_RADIUS:
        raise ValueError(f"ssim needs images larger than 11x11 after shave/crop, got {a.shape[:2]}")
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_a, mu_b, aa, bb, ab = (_gaussian_valid(m) for m in (a, b, a * a, b * b, a * b))
    var_a, var_b, cov = aa - mu_a**2, bb - mu_b**2, ab - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean(axis=(0, 1)).mean())


def _gaussian_window() -> np.ndarray:
    x = np.arange(-WINDOW_RADIUS, WINDOW_RADIUS + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * 1.5**2))
    return g / g.sum()


def _gaussian_valid(m: np.ndarray) -> np.ndarray:
    """Separable 11x11 Gaussian filter, keeping only positions where the window fits ('valid')."""
    g = _gaussian_window()
    out = correlate1d(correlate1d(m, g, axis=0, mode="constant"), g, axis=1, mode="constant")
    r = WINDOW_RADIUS
    return out[r:-r, r:-r]


def _as_hwc(x) -> np.ndarray:
    """numpy HxWxC / HxW, or torch (C,H,W) / (1,C,H,W), as a float64 HxWxC array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
        if x.ndim == 4:
            if x.shape[0] != 1:
                raise ValueError(f"metrics take one image at a time, got a batch of {x.shape[0]}")
            x = x[0]
        if x.ndim != 3:
            raise ValueError(f"expected a (C,H,W) or (1,C,H,W) tensor, got shape {x.shape}")
        x = np.moveaxis(x, 0, -1)
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[2] not in (1, 3):
        raise ValueError(f"expected an HxWx3 or HxWx1 image, got shape {x.shape}")
    return x


def _prepare(img, ref, space: str, shave: int, data_range: float, crop: int | None):
    """Both images as float64 HxWxC in the scoring space, cropped and shaved; plus the peak value."""
    a, b = _as_hwc(img), _as_hwc(ref)
    if a.shape != b.shape:
        raise ValueError(f"image and reference differ in shape: {a.shape} vs {b.shape}")
    if np.issubdtype(a.dtype, np.integer) and data_range == 1.0:
        raise ValueError(f"integer ({a.dtype}) images need data_range=255 (or convert to float in [0, 1])")
    a, b = a.astype(np.float64), b.astype(np.float64)
    if space == "y":
        a, b = (_y(m, data_range) for m in (a, b))
        data_range = 1.0
    elif space == "rgb":
        if a.shape[2] != 3:
            raise ValueError("space='rgb' needs 3-channel images; use space='y' for a Y-only image")
    else:
        raise ValueError(f"space must be 'rgb' or 'y', got {space!r}")
    if crop is not None:
        a, b = a[:crop, :crop], b[:crop, :crop]
    if shave:
        a, b = a[shave:-shave, shave:-shave], b[shave:-shave, shave:-shave]
    if a.size == 0:
        raise ValueError(f"nothing left to score after crop={crop}, shave={shave}")
    return a, b, data_range


def _y(m: np.ndarray, data_range: float) -> np.ndarray:
    """Luma in [0, 1] units, HxWx1; a single-channel input is taken as Y already."""
    m = m / data_range
    if m.shape[2] == 1:
        return m
    return np.asarray(rgb_to_y(m), dtype=np.float64).reshape(m.shape[0], m.shape[1], 1)
