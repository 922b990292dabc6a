"""PSNR and SSIM, one function each, whose keyword arguments name the measuring protocol; computed in torch
on the device the images are on.

- ``space``: ``'rgb'`` (all three channels) or ``'y'`` (luma, ITU-R BT.601 as MATLAB's rgb2ycbcr, via
  ``data.color.rgb_to_y``; a single-channel input is taken as Y already). Y is scored in [0, 1] units
  (16..235 scaled by 1/255), which gives the same numbers as BasicSR/EDSR scoring Y*255 with range 255.
- ``shave``: pixels cropped from every side before scoring (benchmarks: shave = scale).
- ``crop``: keep only the top-left ``crop`` x ``crop`` pixels at most (the multiblock report: 1500).
- ``data_range``: the value of white in the inputs (1.0 for float images, 255 for 8-bit ones).

Inputs: torch tensors (C,H,W) or (N,C,H,W) on any device, or numpy HxWxC (or HxW) arrays (scored on the
CPU); C = 3 or 1. A batch of N images gives the mean of the N per-image values. Training-time validation
calls e.g. ``psnr(output, target, space="rgb", shave=0)`` on its NCHW device tensors in [0, 1].
SSIM follows Wang et al. 2004 (MATLAB ssim_index.m, as BasicSR; window and constants in ``data.ssim_window``,
shared with the training loss): 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, 'valid' filtering,
mean of the map, channel means averaged; no downsampling.

Precision: everything is float64, as the scipy reference this replaced (``tests/inference/metrics_reference.py``,
equal within 1e-9 in the tests). SSIM's variances are differences of nearly equal filtered maps: float32
filtering was up to 1.3e-5 off (Set14's ppt3 enlarged 2x; 3.7e-6 after subtracting each image's mean;
the budget is 1e-6); float32 for the difference a - b only is 1.2e-9 off on SR outputs but not on every
input (2.9e-6 for an image 0.2 brighter than its reference), so it is not used. docs/benchmarks.md lists
what was tried. On a CPU, SSIM (and the squared error, for ``psnr_ssim_per_image``) runs in the small C kernel
of ``inference.ssim_kernel`` when a C compiler is there: float64 too, about 5x faster than the eager PyTorch
SSIM kept for GPUs and compiler-less machines, equal to it within 1e-15.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.errors import UserError
from data.color import rgb_to_y, y_affine
from data.ssim_window import K1, K2, WINDOW_RADIUS, gaussian_window
from inference import ssim_kernel

PROTOCOLS = {
    "benchmark": "Y (BT.601), shave = scale pixels from each side (BasicSR/EDSR convention)",
    "benchmark_rgb": "RGB, shave = scale pixels from each side",
    "report": "RGB, no shave, top-left crop of at most 1500x1500 (the multiblock report)",
    "realsr": "Y (BT.601), no shave (RealSR same-size pairs)",
}
STRIP_ROWS = 32  # SSIM output rows per strip on a CPU (measured: 3x faster than the whole map at 480x500)


def protocol(name: str, scale: int) -> dict:
    """Keyword arguments for ``psnr`` / ``ssim`` under a named protocol (see ``PROTOCOLS``)."""
    kwargs = {
        "benchmark": {"space": "y", "shave": scale},
        "benchmark_rgb": {"space": "rgb", "shave": scale},
        "report": {"space": "rgb", "shave": 0, "crop": 1500},
        "realsr": {"space": "y", "shave": 0},
    }
    if name not in kwargs:
        raise UserError(f"unknown metric protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
    return kwargs[name]


def psnr(img: Any, ref: Any, *, space: str = "rgb", shave: int = 0, data_range: float = 1.0,
         crop: int | None = None) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` for identical images."""
    return float(psnr_per_image(img, ref, space=space, shave=shave, data_range=data_range, crop=crop).mean())


def ssim(img: Any, ref: Any, *, space: str = "rgb", shave: int = 0, data_range: float = 1.0,
         crop: int | None = None) -> float:
    """Structural similarity (Wang et al. 2004), mean over the 'valid' map and over channels."""
    return float(ssim_per_image(img, ref, space=space, shave=shave, data_range=data_range, crop=crop).mean())


def psnr_per_image(img: Any, ref: Any, *, space: str = "rgb", shave: int = 0, data_range: float = 1.0,
                   crop: int | None = None) -> torch.Tensor:
    """PSNR of each image of a batch, a float64 tensor (N,) on the images' device (no host sync)."""
    scored = _prepare(img, ref, space, shave, data_range, crop)
    if scored.kernel:
        mse = scored.mse(ssim_kernel.sse(scored.a, scored.b, scored.luma))
    else:
        a, b = scored.float64_planes()
        mse = (a - b).square_().mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(scored.peak**2 / mse)  # mse 0 -> inf


def ssim_per_image(img: Any, ref: Any, *, space: str = "rgb", shave: int = 0, data_range: float = 1.0,
                   crop: int | None = None) -> torch.Tensor:
    """SSIM of each image of a batch, a float64 tensor (N,) on the images' device (no host sync)."""
    return _ssim_and_mse(_prepare(img, ref, space, shave, data_range, crop))[0]


def psnr_ssim_per_image(img: Any, ref: Any, *, space: str = "rgb", shave: int = 0, data_range: float = 1.0,
                        crop: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(psnr_per_image, ssim_per_image)`` of the same arguments, from one pass where the C kernel runs."""
    scored = _prepare(img, ref, space, shave, data_range, crop)
    ssim_values, mse = _ssim_and_mse(scored)
    return 10.0 * torch.log10(scored.peak**2 / mse), ssim_values


@dataclass
class _Scored:
    """Two images cropped and shaved, in their own float dtype; what is scored is each channel, or with
    ``luma`` = (weights, offset) one plane made of the channels (Y, or a single channel / data_range)."""

    a: torch.Tensor
    b: torch.Tensor
    peak: float
    luma: ssim_kernel.Luma | None
    data_range: float

    @property
    def kernel(self) -> bool:
        """Scored by the C kernel: on a CPU where it could be built."""
        return self.a.device.type == "cpu" and ssim_kernel.load() is not None

    def mse(self, sse: torch.Tensor) -> torch.Tensor:
        """Per image, the mean squared error from the kernel's per-plane sums (N, P)."""
        return sse.sum(dim=1) / (sse.shape[1] * self.a[0, 0].numel())

    def float64_planes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The scored planes as float64 (N, P, H, W) tensors, for the PyTorch path."""
        a, b = self.a.to(torch.float64), self.b.to(torch.float64)
        if self.luma is None:
            return a, b
        return _y(a, self.data_range), _y(b, self.data_range)


def _ssim_and_mse(scored: _Scored) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: mean SSIM over the scored planes, and the mean squared error. On a CPU with the C kernel
    (``inference.ssim_kernel``) both come from one pass; elsewhere from the eager ``_ssim_torch``."""
    if min(n - 2 * WINDOW_RADIUS for n in scored.a.shape[-2:]) <= 0:
        raise ValueError(f"ssim needs images larger than 11x11 after shave/crop, got {tuple(scored.a.shape[-2:])}")
    c1, c2 = 2 * (K1 * scored.peak) ** 2, 2 * (K2 * scored.peak) ** 2  # doubled, as the terms below
    if scored.kernel:
        planes, sse = ssim_kernel.ssim_and_sse(scored.a, scored.b, _WINDOW, c1, c2, scored.luma)
        return planes.mean(dim=1), scored.mse(sse)
    a, b = scored.float64_planes()
    return _ssim_torch(a, b, c1, c2), (a - b).square_().mean(dim=(1, 2, 3))


def _ssim_torch(a: torch.Tensor, b: torch.Tensor, c1: float, c2: float) -> torch.Tensor:
    """Filtered are the sum s = a + b and the difference d = a - b, four maps instead of the usual five (a, b,
    a^2, b^2, ab): 2 mu_a mu_b = (mu_s^2 - mu_d^2) / 2, mu_a^2 + mu_b^2 = (mu_s^2 + mu_d^2) / 2, and the same
    for the (co)variances; measured 1.2x faster, equal to the five-map SSIM within 4e-14. On a CPU the map is
    computed in strips of ``STRIP_ROWS`` output rows, so that a strip's maps stay in the caches."""
    height, width = (n - 2 * WINDOW_RADIUS for n in a.shape[-2:])
    taps = _TAPS
    rows = STRIP_ROWS if a.device.type == "cpu" else height
    total = torch.zeros(a.shape[:2], dtype=torch.float64, device=a.device)
    for r0 in range(0, height, rows):
        r1 = min(r0 + rows, height)
        x, y = a[..., r0 : r1 + 2 * WINDOW_RADIUS, :], b[..., r0 : r1 + 2 * WINDOW_RADIUS, :]
        s, d = x + y, x - y
        mu_s, mu_d, ss, dd = _gaussian_valid(torch.cat([s, d, s * s, d * d], dim=1), taps).chunk(4, dim=1)
        mu_ss, mu_dd = mu_s.square_(), mu_d.square_()
        var_s, var_d = ss.sub_(mu_ss), dd.sub_(mu_dd)
        numerator = (mu_ss - mu_dd + c1) * (var_s - var_d + c2)
        denominator = (mu_ss + mu_dd + c1) * (var_s + var_d + c2)
        total += (numerator / denominator).sum(dim=(2, 3))
    return (total / (height * width)).mean(dim=1)


def evaluate_pair(img: Any, ref: Any, scale: int) -> dict[str, float]:
    """The four numbers every results.json carries: Y and RGB, shave = scale (none for same-size pairs)."""
    shave = scale if scale > 1 else 0
    values = {}
    for space in ("y", "rgb"):
        psnr_values, ssim_values = psnr_ssim_per_image(img, ref, space=space, shave=shave)
        values[f"psnr_{space}"], values[f"ssim_{space}"] = psnr_values.mean(), ssim_values.mean()
    return to_floats(values)


def to_floats(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Scalar tensors -> floats with one device-to-host copy."""
    numbers = torch.stack([v.reshape(()) for v in values.values()]).cpu().tolist()
    return {key: float(x) for key, x in zip(values, numbers, strict=True)}


# Made once, on the CPU, at import: the C kernel takes the tensor, the PyTorch path its taps as numbers
_WINDOW = gaussian_window()
_TAPS = _WINDOW.tolist()


def _gaussian_valid(maps: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Separable 11x11 Gaussian filter over the last two axes, 'valid' positions only: shifted views
    added in place (the window is symmetric: tap k and tap 10 - k share a weight), float64 throughout."""
    r = WINDOW_RADIUS
    height, width = maps.shape[-2] - 2 * r, maps.shape[-1] - 2 * r
    rows = maps[..., r : r + height, :] * taps[r]
    for k in range(r):
        rows.add_(maps[..., k : k + height, :], alpha=taps[k]).add_(maps[..., 2 * r - k : 2 * r - k + height, :],
                                                                    alpha=taps[k])
    out = rows[..., r : r + width] * taps[r]
    for k in range(r):
        out.add_(rows[..., k : k + width], alpha=taps[k]).add_(rows[..., 2 * r - k : 2 * r - k + width], alpha=taps[k])
    return out


def _as_nchw(x: Any) -> torch.Tensor:
    """numpy HxWxC / HxW, or a tensor (C,H,W) / (N,C,H,W), as an (N,C,H,W) tensor (numpy: on the CPU)."""
    if not isinstance(x, torch.Tensor):
        x = np.asarray(x)
        if x.ndim == 2:
            x = x[:, :, None]
        if x.ndim != 3:
            raise ValueError(f"expected an HxWx3 or HxWx1 image, got shape {x.shape}")
        x = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected a (C,H,W) or (N,C,H,W) image with C = 1 or 3, got shape {tuple(x.shape)}")
    return x.detach()


def _prepare(img: Any, ref: Any, space: str, shave: int, data_range: float, crop: int | None) -> _Scored:
    """Both images as (N,C,H,W) tensors on the first one's device, cropped and shaved, and what is scored."""
    a, b = _as_nchw(img), _as_nchw(ref)
    if a.shape != b.shape:
        raise ValueError(f"image and reference differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if not a.is_floating_point() and data_range == 1.0:
        raise ValueError(f"integer ({a.dtype}) images need data_range=255 (or convert to float in [0, 1])")
    float_type = a.dtype if a.dtype in (torch.float32, torch.float64) and b.dtype == a.dtype else torch.float64
    a, b = a.to(float_type), b.to(device=a.device, dtype=float_type)
    if space == "y":
        weights, offset = y_affine() if a.shape[1] == 3 else ([1.0], 0.0)  # one channel: Y already
        luma = ([w / data_range for w in weights], offset)
        peak = 1.0
    elif space == "rgb":
        if a.shape[1] != 3:
            raise ValueError("space='rgb' needs 3-channel images; use space='y' for a Y-only image")
        luma, peak = None, float(data_range)
    else:
        raise ValueError(f"space must be 'rgb' or 'y', got {space!r}")
    if crop is not None:
        a, b = a[..., :crop, :crop], b[..., :crop, :crop]
    if shave:
        a, b = a[..., shave:-shave, shave:-shave], b[..., shave:-shave, shave:-shave]
    if a.numel() == 0:
        raise ValueError(f"nothing left to score after crop={crop}, shave={shave}")
    return _Scored(a, b, peak, luma, float(data_range))


def _y(m: torch.Tensor, data_range: float) -> torch.Tensor:
    """Luma in [0, 1] units, (N,1,H,W); a single-channel input is taken as Y already."""
    m = m / data_range
    return m if m.shape[1] == 1 else rgb_to_y(m)
