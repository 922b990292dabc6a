"""Sharpening from Python, beside ``python -m pipelines.multiblock.apply``:

    from PIL import Image
    from pipelines.multiblock.api import sharpen
    sharpen(Image.open("photo.jpg"), weights="runs/mb/N.pt").save("photo_sharp.png")

The same path as the command (exact inference, ``inference.multiblock_forward``: the whole image where it fits,
on a CPU by ONNX Runtime, else in bands). Networks are loaded once per (weights, device) and kept for later
calls, with their ONNX Runtime session. ``self_ensemble=True`` averages the outputs over the 8 flips and
rotations of the image (as ``--self-ensemble``: exact, 8x the time).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.errors import UserError
from data.io import to_uint
from pipelines.multiblock.apply import WeightsSpec, load_chain, sharpen_array, weight_paths


def sharpen(image: Any, weights: WeightsSpec, device: str | torch.device | None = None,
            upscale_first: float | None = None, self_ensemble: bool = False) -> Any:
    """Apply the network of ``weights`` to ``image``, at its size or ``upscale_first`` times larger.

    ``image``: a PIL image (any mode; turned as its EXIF orientation tag says, converted to RGB) or a numpy
    array HxWx3 or HxW (grey), ``uint8``, ``uint16`` or float in [0, 1]. ``weights``: N.pt, one N<i>.pt, or
    several (a list, or ``"N1.pt,N2.pt"``) chained in order. ``upscale_first``: MATLAB-bicubic upscaling
    before the network, for inputs smaller than the wanted output. ``device``: default CUDA when available.
    Returns a PIL RGB image for a PIL input, else an HxWx3 array of the input's type (float: float32).
    """
    if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image, without importing PIL here
        from PIL import Image, ImageOps

        upright = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        return Image.fromarray(sharpen(upright, weights, device, upscale_first, self_ensemble))
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise UserError(f"sharpen needs an HxWx3 or HxW image, got an array of shape {array.shape}")
    if array.dtype not in (np.uint8, np.uint16) and array.dtype.kind != "f":
        raise UserError(f"sharpen needs uint8, uint16 or float pixels in [0, 1], got {array.dtype}")
    chosen = torch.device(device) if device is not None else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    files = tuple((str(path.resolve()), path.stat().st_mtime_ns if path.is_file() else 0)
                  for path in weight_paths(weights))  # a retrained file is loaded again
    result = sharpen_array(_network(files, str(chosen)), array, chosen, upscale_first, self_ensemble)
    if array.dtype.kind == "f":
        return result
    return to_uint(result, bits=16 if array.dtype == np.uint16 else 8)


@functools.lru_cache(maxsize=4)
def _network(files: tuple[tuple[str, int], ...], device: str) -> nn.Module:
    return load_chain([Path(path) for path, _mtime in files])[0].to(device)
