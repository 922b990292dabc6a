"""Upscaling from Python, beside the command line:

    from PIL import Image
    from pipelines.espcn.api import upscale
    upscale(Image.open("photo.jpg"), weights="x3").save("photo_x3.png")

The same fast path as ``espcn.py upscale`` (whole image through ``FastESPCN``, a Y model's chroma by
PyTorch's bicubic). Models are loaded once per (weights, device) and kept for later calls.
``self_ensemble=True``: the x8 self-ensemble (``inference.self_ensemble``; about 0.1-0.2 dB more, 8x the time).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.errors import UserError
from inference.fast_espcn import FastESPCN, upscale_image
from pipelines.espcn.common import DEFAULT_WEIGHTS, load_espcn
from pipelines.espcn.upscale import upscale_precision

SHIPPED = {"x2": "espcn_x2_y.pt", "x3": "espcn_x3_y.pt", "x4": "espcn_x4_y.pt", "x3-paper": "espcn_x3_y_paper.pt"}


def upscale(image: Any, weights: str | Path = "x3", device: str | torch.device | None = None,
            self_ensemble: bool = False) -> Any:
    """Upscale ``image`` by the scale of ``weights``.

    ``image``: a PIL image (any mode; converted to RGB) or a numpy array HxWx3 or HxW (grey), ``uint8``,
    ``uint16`` or float in [0, 1]. ``weights``: a shipped name (``x2``, ``x3``, ``x4``, ``x3-paper``) or
    the path of a checkpoint written by ``espcn.py train``. ``device``: default CUDA when available.
    ``self_ensemble``: average the network's outputs over the 8 flips/rotations of the input (8x the time).
    Returns a PIL RGB image for a PIL input, else an HxWx3 ``uint8`` array.
    """
    if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image, without importing PIL here
        from PIL import Image

        return Image.fromarray(upscale(np.asarray(image.convert("RGB")), weights, device, self_ensemble))
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise UserError(f"upscale needs an HxWx3 or HxW image, got an array of shape {array.shape}")
    if array.dtype.kind not in "uf":
        raise UserError(f"upscale needs uint8, uint16 or float pixels in [0, 1], got {array.dtype}")
    return upscale_image(_model(str(_weights_file(weights)), str(_device(device))), array, ensemble=self_ensemble)


def _weights_file(weights: str | Path) -> Path:
    if str(weights) in SHIPPED:
        return DEFAULT_WEIGHTS.parent / SHIPPED[str(weights)]
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UserError(f"weights {str(weights)!r} not found: give one of {', '.join(SHIPPED)} or the path of a "
                        "checkpoint written by 'espcn.py train'")
    return path


def _device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@functools.lru_cache(maxsize=4)
def _model(path: str, device: str) -> FastESPCN:
    """As ``espcn.py upscale`` with its defaults: ONNX Runtime on a CPU where it is installed, else the strips
    (bf16 on a CPU with bf16 hardware: ``upscale_precision``)."""
    precision = upscale_precision("auto", torch.device(device), "auto")
    return FastESPCN(load_espcn(Path(path), torch.device(device)), precision=precision, device=device)
