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


class _BorderSums:
    """Per-image, per-channel float64 sums of a feature map: the whole, its first and last rows and columns,
    and its four corners (``rows[..., 0]`` = first row, ``corners[..., row, col]``)."""

    def __init__(self, n: int, channels: int, device: torch.device) -> None:
        def zeros(*shape: int) -> Tensor:
            return torch.zeros(n, channels, *shape, dtype=torch.float64, device=device)

        self.total, self.rows, self.cols, self.corners = zeros(), zeros(2), zeros(2), zeros(2, 2)

    def add_band(self, z: Tensor, first: bool, last: bool) -> None:
        self.total += z.sum(dim=(2, 3))
        self.cols[:, :, 0] += z[:, :, :, 0].sum(dim=2)
        self.cols[:, :, 1] += z[:, :, :, -1].sum(dim=2)
        if first:
            self.rows[:, :, 0] = z[:, :, 0].sum(dim=2)
            self.corners[:, :, 0] = z[:, :, 0, [0, -1]]
        if last:
            self.rows[:, :, 1] = z[:, :, -1].sum(dim=2)
            self.corners[:, :, 1] = z[:, :, -1, [0, -1]]

    def seen_by_tap(self, dy: int, dx: int) -> Tensor:
        """The sum over the pixels a zero-padded 3x3 tap (dy, dx) reads: tap 0 misses the last row or column,
        tap 2 the first."""
        excluded = {0: 1, 1: None, 2: 0}
        row, col = excluded[dy], excluded[dx]
        s = self.total.clone()
        if row is not None:
            s -= self.rows[:, :, row]
        if col is not None:
            s -= self.cols[:, :, col]
        if row is not None and col is not None:
            s += self.corners[:, :, row, col]
        return s


def _relu_conv1_sums(rcab: RCAB, h: Tensor, band: int) -> _BorderSums:
    """The border sums of ``z = relu(conv1(h))``, computed band by band."""
    n, _c, height, _w = h.shape
    sums = _BorderSums(n, rcab.conv1.out_channels, h.device)
    for start in range(0, height, band):
        stop = min(height, start + band)
        top, bottom = max(0, start - 1), min(height, stop + 1)
        z = torch.relu(rcab.conv1(h[:, :, top:bottom]))[:, :, start - top:start - top + stop - start].double()
        sums.add_band(z, first=start == 0, last=stop == height)
    return sums


def attention_input_mean(rcab: RCAB, h: Tensor, band: int) -> Tensor:
    """Exact per-image, per-channel mean of ``conv2(relu(conv1(h)))``: what the RCAB's attention pools."""
    sums = _relu_conv1_sums(rcab, h, band)
    conv2 = rcab.conv2
    weight = conv2.weight.double()
    summed = sum(sums.seen_by_tap(dy, dx) @ weight[:, :, dy, dx].T for dy in range(3) for dx in range(3))
    mean = summed / (h.shape[2] * h.shape[3])
    if conv2.bias is not None:
        mean += conv2.bias.double()
    return mean.to(h.dtype)


def rcab_in_place(rcab: RCAB, h: Tensor, band: int) -> None:
    pooled = attention_input_mean(rcab, h, band)[:, :, None, None]
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
