"""Running a trained network on whole images: tensors in and out, tiling, and colour handling.

A luminance model (``channels == 1``) sees the Y channel of the input (BT.601, as MATLAB's rgb2ycbcr);
its chroma is upscaled with MATLAB-compatible bicubic and recombined, which is how every Y-channel SR
paper produces colour output.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from data.color import rgb_to_ycbcr, ycbcr_to_rgb
from data.resize import imresize
from inference.banded import banded_forward, has_global_attention
from inference.tiling import tiled_forward

DEFAULT_TILE = 512


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWxC float array -> 1xCxHxW float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))[None]


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """1xCxHxW tensor -> HxWxC float32 array."""
    return tensor[0].detach().float().cpu().numpy().transpose(1, 2, 0)


def run_model(model: nn.Module, image: np.ndarray, device: torch.device, scale: int = 1,
              tile: int = DEFAULT_TILE) -> np.ndarray:
    """Apply ``model`` to an HxWxC float image with bounded memory; the output is not clipped.

    Local networks (ESPCN) run on overlapping tiles; channel-attention blocks, whose global pooling makes
    tiles inexact, run band by band with exact global statistics (``inference.banded``).
    """
    if isinstance(model, nn.Module):
        model.to(device)  # model and input on one device (a no-op when the model is there already)
    x = image_to_tensor(image).to(device)
    with torch.inference_mode():
        if has_global_attention(model):
            y = banded_forward(model, x)
        else:
            y = tiled_forward(model, x, tile=tile, scale=scale, out_device=torch.device("cpu"))
    return tensor_to_image(y)


def super_resolve(model: nn.Module, rgb: np.ndarray, *, scale: int, channels: int, device: torch.device,
                  tile: int = DEFAULT_TILE) -> np.ndarray:
    """Upscale an HxWx3 float RGB image in [0, 1] by ``scale`` (1 for same-size restoration)."""
    if channels == 3:
        return np.clip(run_model(model, rgb, device, scale, tile), 0.0, 1.0)
    ycbcr = rgb_to_ycbcr(rgb)
    y = run_model(model, ycbcr[..., :1], device, scale, tile)
    chroma = ycbcr[..., 1:] if scale == 1 else imresize(ycbcr[..., 1:], scale=scale)
    return np.clip(ycbcr_to_rgb(np.concatenate([y, chroma], axis=2)), 0.0, 1.0)
