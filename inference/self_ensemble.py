"""The x8 self-ensemble ("+" rows: EDSR+, RCAN+): a network run on the 8 flips and rotations of its input,
each output turned back and the 8 averaged in float, before any clamping or rounding.

``self_ensemble(forward, x)`` wraps any forward pass (a whole-image, tiled or exact banded one, of any scale
factor), so the inference path's exactness is kept: a flip or rotation of a banded pass is still exact. Memory
is one running sum beside one pass: the outputs are added one transform at a time, never held together.
Costs 8x the network's time. Scores made with it are the method ``model+`` (``PLUS``), beside ``model``; a
model is never selected by them.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

TRANSFORMS = 8  # rotations by 0, 90, 180, 270 degrees, each without and with a horizontal flip
PLUS = "+"  # the suffix of a method scored with the ensemble: model+
DESCRIPTION = ("model+: x8 self-ensemble (the model on the 8 flips/rotations of the input, each output turned "
               "back, averaged in float before clamping)")


def plus(method: str) -> str:
    """The name of ``method`` scored with the ensemble: ``model`` -> ``model+``."""
    return method + PLUS


def dihedral(x: Tensor, index: int) -> Tensor:
    """Transform ``index`` (0-7) of an NCHW tensor: flipped left-right when ``index >= 4``, then turned
    ``index % 4`` quarter turns (contiguous, so banded and strip passes read it row by row)."""
    if index >= 4:
        x = x.flip(-1)
    return torch.rot90(x, index % 4, dims=(-2, -1)).contiguous()


def undo_dihedral(y: Tensor, index: int) -> Tensor:
    """The inverse of ``dihedral(., index)``: ``undo_dihedral(dihedral(x, i), i)`` equals ``x``."""
    y = torch.rot90(y, -(index % 4), dims=(-2, -1))
    return y.flip(-1) if index >= 4 else y


@torch.inference_mode()
def self_ensemble(forward: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """The mean over the 8 dihedral transforms ``t`` of ``t^-1(forward(t(x)))``, as float32 (float64 input:
    float64). ``forward`` maps NCHW to NCHW with both sides scaled by one factor (1 for same-size networks)."""
    total: Tensor | None = None
    for index in range(TRANSFORMS):
        out = undo_dihedral(forward(dihedral(x, index)), index)
        if total is None:
            total = out.to(torch.promote_types(out.dtype, torch.float32), copy=True)
        else:
            total += out
    return total.div_(TRANSFORMS)
