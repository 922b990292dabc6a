"""Exact, low-memory inference for channel-attention blocks (``Block``, ``MultiBlockNet``).

Overlapping tiles reproduce a whole-image pass only for local networks; channel attention pools over the
whole image, so a tile's attention weights differ from the image's. This module runs a block layer by
layer over full-width bands of rows instead, keeping one C x H x W feature map that is updated in place,
and gets every attention's global mean exactly:

- pass 1 of an RCAB computes only ``z = relu(conv1(h))``, band by band, and sums it per channel over the
  image, over its first and last rows and columns, and at its corners. The mean of ``conv2(z)`` follows
  exactly, because each of conv2's 3x3 taps sees the whole of ``z`` except one edge row and/or column
  (zero padding);
- pass 2 computes the RCAB in full and adds it to the map in place; the rows a band still needs from
  above (already overwritten) are kept in a copy of ``halo`` rows.

Cost: about 1.5x the RCAB convolutions of a whole-image pass; memory: one feature map plus band buffers.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.rcan import RCAB, Block, MultiBlockNet

DEFAULT_BAND = 64


def has_global_attention(model: nn.Module) -> bool:
    return any(isinstance(m, RCAB) for m in model.modules())


def map_rows(fn: Callable[[Tensor], Tensor], src: Tensor, dst: Tensor, halo: int, band: int) -> None:
    """``dst = fn(src)`` band by band, for a zero-padded stack of convolutions of total radius ``halo``.

    ``dst`` may be ``src`` itself (same shape): the rows above a band, already overwritten, are then read
    from a saved copy of their old values.
    """
    height = src.shape[2]
    band = max(band, halo)  # the saved copy must hold every overwritten row a later band reads
    in_place = dst.data_ptr() == src.data_ptr()
    saved: Tensor | None = None
    for start in range(0, height, band):
        stop = min(height, start + band)
        top, bottom = max(0, start - halo), min(height, stop + halo)
        if in_place and saved is not None:
            window = torch.cat([saved, src[:, :, start:bottom]], dim=2)
        else:
            window = src[:, :, top:bottom]
        if in_place:
            saved = src[:, :, max(0, stop - halo):stop].clone()
        dst[:, :, start:stop] = fn(window)[:, :, start - top:start - top + stop - start]


def conv1_sums(rcab: RCAB, h: Tensor, band: int) -> Tensor:
    """Exact per-image, per-channel mean of ``conv2(relu(conv1(h)))`` (the attention's pooled input)."""
    n, _c, height, width = h.shape
    conv1, conv2 = rcab.conv1, rcab.conv2
    mid = conv1.out_channels
    total = torch.zeros(n, mid, dtype=torch.float64, device=h.device)
    rows = torch.zeros(n, mid, 2, dtype=torch.float64, device=h.device)  # first, last row sums
    cols = torch.zeros(n, mid, 2, dtype=torch.float64, device=h.device)  # first, last column sums
    corners = torch.zeros(n, mid, 2, 2, dtype=torch.float64, device=h.device)
    for start in range(0, height, band):
        stop = min(height, start + band)
        top, bottom = max(0, start - 1), min(height, stop + 1)
        z = torch.relu(conv1(h[:, :, top:bottom]))[:, :, start - top:start - top + stop - start].double()
        total += z.sum(dim=(2, 3))
        cols[:, :, 0] += z[:, :, :, 0].sum(dim=2)
        cols[:, :, 1] += z[:, :, :, -1].sum(dim=2)
        if start == 0:
            rows[:, :, 0] = z[:, :, 0].sum(dim=2)
            corners[:, :, 0] = z[:, :, 0, [0, -1]]
        if stop == height:
            rows[:, :, 1] = z[:, :, -1].sum(dim=2)
            corners[:, :, 1] = z[:, :, -1, [0, -1]]
    # Tap dy = 0 reads rows i - 1: it misses the last row; dy = 2 misses the first; same for columns.
    excluded = {0: 1, 1: None, 2: 0}
    weight = conv2.weight.double()
    summed = torch.zeros(n, conv2.out_channels, dtype=torch.float64, device=h.device)
    for dy in range(3):
        for dx in range(3):
            s = total.clone()
            row, col = excluded[dy], excluded[dx]
            if row is not None:
                s -= rows[:, :, row]
            if col is not None:
                s -= cols[:, :, col]
            if row is not None and col is not None:
                s += corners[:, :, row, col]
            summed += s @ weight[:, :, dy, dx].T
    mean = summed / (height * width)
    if conv2.bias is not None:
        mean += conv2.bias.double()
    return mean.to(h.dtype)


def rcab_in_place(rcab: RCAB, h: Tensor, band: int) -> None:
    pooled = conv1_sums(rcab, h, band)[:, :, None, None]
    attention = rcab.attention
    scale = torch.sigmoid(attention.up(torch.relu(attention.down(pooled))))

    def body(window: Tensor) -> Tensor:
        return window + rcab.conv2(torch.relu(rcab.conv1(window))) * scale

    map_rows(body, h, h, halo=2, band=band)


def block_forward(block: Block, x: Tensor, band: int = DEFAULT_BAND) -> Tensor:
    """``block(x)`` computed band by band: equal to the whole-image pass up to float rounding."""
    n, _c, height, width = x.shape
    h = x.new_empty(n, block.head.out_channels, height, width)
    map_rows(block.head, x, h, halo=1, band=band)
    for rcab in block.body:
        rcab_in_place(rcab, h, band)
    if isinstance(block.end, nn.Conv2d):
        map_rows(block.end, h, h, halo=1, band=band)
    out = torch.empty_like(x)
    map_rows(lambda window: F.conv2d(window, block.tail.weight, block.tail.bias, padding=1), h, out, 1, band)
    del h
    out += x
    return out.clamp_(0.0, 1.0) if block.clamp else out


@torch.inference_mode()
def banded_forward(model: nn.Module, x: Tensor, band: int = DEFAULT_BAND) -> Tensor:
    """Exact inference of a ``Block`` or ``MultiBlockNet`` with one feature map of memory."""
    if isinstance(model, Block):
        return block_forward(model, x, band)
    if isinstance(model, MultiBlockNet):
        for block in model.blocks:
            x = block_forward(block, x, band)
        return x
    raise TypeError(f"banded_forward handles Block and MultiBlockNet, not {type(model).__name__}")
