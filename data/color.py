"""RGB <-> YCbCr exactly as MATLAB's rgb2ycbcr / ycbcr2rgb (ITU-R BT.601, studio range).

For float input in [0, 1], Y lies in [16, 235] / 255 and Cb, Cr in [16, 240] / 255, which is what the
super-resolution literature means by "PSNR on Y". Every function takes either a numpy HxWx3 array (channel
axis last) or a torch tensor shaped (..., 3, H, W) (channel axis -3, so a whole NCHW batch works) and
returns the same kind, shape and float dtype. Nothing is clipped: ``ycbcr_to_rgb(rgb_to_ycbcr(x)) == x``.
torch is only used when a tensor is passed in, so the data package does not import it.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

# MATLAB rgb2ycbcr: [Y; Cb; Cr] = (OFFSET + MATRIX @ [R; G; B] * 255) / 255 for RGB in [0, 1].
_MATRIX = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=np.float64
) / 255.0
_OFFSET = np.array([16.0, 128.0, 128.0]) / 255.0
_INVERSE = np.linalg.inv(_MATRIX)


def rgb_to_ycbcr(img: Any) -> Any:
    """RGB in [0, 1] -> YCbCr (MATLAB rgb2ycbcr): numpy HxWx3 or torch (..., 3, H, W)."""
    return _affine(img, _MATRIX, _OFFSET)


def ycbcr_to_rgb(img: Any) -> Any:
    """YCbCr -> RGB (MATLAB ycbcr2rgb), the exact inverse of ``rgb_to_ycbcr``; no clipping."""
    return _affine(img, _INVERSE, -_INVERSE @ _OFFSET)


def rgb_to_y(img: Any) -> Any:
    """Luma only: HxW for a numpy HxWx3 image (MATLAB's ``rgb2ycbcr(x)(:, :, 1)``), and (..., 1, H, W) for
    a torch tensor, so that an NCHW batch stays NCHW."""
    y = _affine(img, _MATRIX[:1], _OFFSET[:1])
    return y if _is_tensor(y) else y[:, :, 0]


def rgb_to_ycbcr_affine() -> tuple[np.ndarray, np.ndarray]:
    """(matrix, offset) of ``rgb_to_ycbcr``: ycbcr = matrix @ rgb + offset, float64, for fused callers."""
    return _MATRIX.copy(), _OFFSET.copy()


def ycbcr_to_rgb_affine() -> tuple[np.ndarray, np.ndarray]:
    """(matrix, offset) of ``ycbcr_to_rgb``: rgb = matrix @ ycbcr + offset, float64, for fused callers."""
    return _INVERSE.copy(), -_INVERSE @ _OFFSET


def y_affine() -> tuple[list[float], float]:
    """(weights, offset) of ``rgb_to_y``: y = weights . rgb + offset, for fused callers."""
    return _MATRIX[0].tolist(), float(_OFFSET[0])


def _affine(img: Any, matrix: np.ndarray, offset: np.ndarray) -> Any:
    """``matrix @ pixel + offset`` for every pixel, on the channel axis of a numpy array or torch tensor."""
    if _is_tensor(img):
        import torch

        if img.dim() < 3 or img.shape[-3] != 3 or not img.is_floating_point():
            raise ValueError(f"expected a float tensor (..., 3, H, W), got {img.dtype} {tuple(img.shape)}")
        m = torch.as_tensor(matrix, dtype=img.dtype, device=img.device)
        b = torch.as_tensor(offset, dtype=img.dtype, device=img.device)
        flat = img.reshape(-1, 3, img.shape[-2] * img.shape[-1])  # one batched (k x 3) @ (3 x HW) product
        out = torch.baddbmm(b[None, :, None], m.expand(flat.shape[0], -1, -1), flat)
        return out.reshape(*img.shape[:-3], m.shape[0], *img.shape[-2:])
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or not np.issubdtype(img.dtype, np.floating):
        raise ValueError(
            f"expected a float HxWx3 array in [0, 1] (use data.io.to_float), got {img.dtype} {img.shape}"
        )
    return img @ matrix.T.astype(img.dtype) + offset.astype(img.dtype)


def _is_tensor(img: Any) -> bool:
    """True for a torch tensor, without importing torch when the caller never did."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(img, torch.Tensor)
