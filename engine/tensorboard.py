"""Optional TensorBoard logging (``TENSORBOARD = True`` in a training script's settings block).

``torch.utils.tensorboard`` (and with it the ``tensorboard`` package) is imported only when logging is
on, so runs without it neither need nor load the package. Scalars: ``train/loss``, ``train/lr`` and
``metrics/<name>`` for every metric of an evaluation row; images: one grid (LR, output, HR) per call.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import UserError

INSTALL_HINT = "pip install tensorboard"
_SKIPPED = {"step", "stage", "seconds", "epoch"}


class TensorBoardLog:
    """A ``SummaryWriter`` that knows this project's evaluation rows and image convention (HxWxC floats)."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def scalars(self, step: int, row: dict[str, Any]) -> None:
        for key, value in row.items():
            if key in _SKIPPED or not isinstance(value, (int, float)):
                continue
            tag = f"train/{key}" if key in ("loss", "lr") else f"metrics/{key}"
            self.writer.add_scalar(tag, float(value), step)
        self.writer.flush()

    def images(self, step: int, tag: str, lr: np.ndarray, output: np.ndarray, hr: np.ndarray) -> None:
        """One image: LR (nearest-upscaled to the HR size), the network's output and HR side by side.
        Arrays are HxWxC floats in [0, 1] (C = 1 or 3), as the rest of the project keeps images."""
        from torchvision.utils import make_grid  # only TensorBoard users pay for importing torchvision

        height, width = hr.shape[:2]
        tiles = []
        for image in (lr, output, hr):
            tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)
            if tensor.shape[1:] != (height, width):
                tensor = F.interpolate(tensor[None], size=(height, width), mode="nearest")[0]
            tiles.append(tensor.clamp(0.0, 1.0))
        self.writer.add_image(tag, make_grid(tiles, nrow=3, padding=4, pad_value=1.0), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def fixed_crop(lr: np.ndarray, hr: np.ndarray, scale: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The centre ``size`` x ``size`` crop of ``lr`` (smaller images whole) and the HR region it covers: the
    same validation patch at every evaluation, so TensorBoard's image slider shows the network learning."""
    height, width = min(size, lr.shape[0]), min(size, lr.shape[1])
    top, left = (lr.shape[0] - height) // 2, (lr.shape[1] - width) // 2
    return (lr[top:top + height, left:left + width],
            hr[top * scale:(top + height) * scale, left * scale:(left + width) * scale])


def open_tensorboard(enabled: bool, log_dir: Path) -> TensorBoardLog | None:
    """A TensorBoardLog writing event files under ``log_dir``, or None when ``enabled`` is False."""
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError(f"TENSORBOARD=true needs the tensorboard package: {INSTALL_HINT} (or --set "
                        "TENSORBOARD=false)") from None
    return TensorBoardLog(SummaryWriter(log_dir=str(log_dir)))
