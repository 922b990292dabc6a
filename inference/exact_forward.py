"""Exact inference of channel-attention networks at the device's pace: the whole image in one pass where
its activations fit in the GPU's free memory, band by band (``inference.banded``) where they do not.

On the CPU the banded pass is kept (bounded memory, within 1e-5 of whole-image; docs/benchmarks.md);
on a GPU the whole-image pass is several times faster, because the bands' small convolutions leave the
GPU idle. Both are exact: the global pooling sees the whole image either way.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from core.hardware import device_has_room
from inference.banded import banded_forward

LIVE_MAPS = 6  # feature maps alive at once in a whole-image RCAB pass (input, conv1, conv2, skip, slack)
GPU_SHARE = 0.8  # of the free memory, the most a whole-image pass may take


def widest_layer(model: nn.Module) -> int:
    return max((m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)), default=3)


def whole_image_bytes(model: nn.Module, x: Tensor) -> int:
    """A bound on the activation memory of a whole-image pass of ``model`` over ``x`` (NCHW)."""
    batch, _channels, height, width = x.shape
    return LIVE_MAPS * widest_layer(model) * batch * height * width * x.element_size()


def fits_whole(model: nn.Module, x: Tensor) -> bool:
    return device_has_room(x.device, whole_image_bytes(model, x), share=GPU_SHARE)


@torch.inference_mode()
def exact_forward(model: nn.Module, x: Tensor) -> Tensor:
    """``model(x)`` for a Block or MultiBlockNet, whole-image when it fits on the GPU, else banded."""
    if fits_whole(model, x):
        try:
            return model(x)
        except torch.cuda.OutOfMemoryError:  # the estimate was short: free what the attempt took, go banded
            torch.cuda.empty_cache()
    return banded_forward(model, x)
