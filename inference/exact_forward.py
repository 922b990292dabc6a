"""Exact inference of networks whose global operations make tiles inexact, at the device's pace: the whole
image in one pass where its activations fit in the GPU's free memory, band by band (``inference.banded``)
where they do not.

On the CPU the banded pass is kept (bounded memory, within 1e-5 of whole-image; docs/benchmarks.md);
on a GPU the whole-image pass is several times faster, because the bands' small convolutions leave the
GPU idle. Both are exact: the global pooling sees the whole image either way. A network without a banded
form (a residual block of it declares no layer order, or a step of unknown radius, ``models.exactness``) runs
whole on any device, and is refused with one line when the GPU cannot hold it: never tiled, never banded.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from core.errors import UserError
from core.hardware import device_has_room
from inference.banded import banded_forward, has_banded_form

LIVE_MAPS = 6  # feature maps alive at once in a whole-image RCAB pass (input, conv1, conv2, skip, slack)
GPU_SHARE = 0.8  # of the free memory, the most a whole-image pass may take


def widest_layer(model: nn.Module) -> int:
    return max((m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)), default=3)


def whole_image_bytes(model: nn.Module, x: Tensor, maps: float = LIVE_MAPS) -> int:
    """A bound on the activation memory of a whole-image pass of ``model`` over ``x`` (NCHW): ``maps``
    feature maps as wide as its widest layer."""
    batch, _channels, height, width = x.shape
    return int(maps * widest_layer(model) * batch * height * width * x.element_size())


def fits_whole(model: nn.Module, x: Tensor) -> bool:
    return device_has_room(x.device, whole_image_bytes(model, x), share=GPU_SHARE)


@torch.inference_mode()
def exact_forward(model: nn.Module, x: Tensor) -> Tensor:
    """``model(x)``: whole-image when it fits on the GPU (or when ``model`` has no banded form), else banded."""
    banded = has_banded_form(model)
    if fits_whole(model, x) or not banded:
        try:
            return model(x)
        except torch.cuda.OutOfMemoryError:  # the estimate was short: free what the attempt took, go banded
            torch.cuda.empty_cache()
            if not banded:
                raise UserError(f"{type(model).__name__} runs only whole (it, or a residual block of it, declares "
                                "no layer_order or receptive_radius: models/exactness.py), and a "
                                f"{x.shape[-2]}x{x.shape[-1]} image does not fit in the memory of {x.device}; "
                                "use smaller images or --device cpu") from None
    return banded_forward(model, x)
