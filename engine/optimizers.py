"""The training scripts' optimizers, in the implementation that suits the parameters' device."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def adam(params: Iterable[Any], device: torch.device, lr: float, **kwargs: Any) -> torch.optim.Adam:
    """``torch.optim.Adam`` over ``params`` (tensors or parameter groups) on ``device``; fused (one kernel
    for every parameter) on a CUDA GPU. There the fp16 gradient scaler also hands its inf/NaN check to the
    kernel, instead of reading a flag from the device before every step."""
    return torch.optim.Adam(params, lr=lr, fused=device.type == "cuda", **kwargs)
