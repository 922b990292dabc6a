"""Exact, low-memory inference of multiblock networks (``Block``, ``MultiBlockNet``), whatever their residual block.

Overlapping tiles reproduce a whole-image pass only for local networks; channel attention pools over the
whole image, so a tile's attention weights differ from the image's. This module runs a block layer by
layer over full-width bands of rows instead, keeping one C x H x W feature map that is updated in place.
It asks each residual block what exactness needs (``models.exactness``) and implements none of them:

- a local block (``receptive_radius``) is mapped band by band with that many rows of context;
- a block with a global pooling (``global_pooling()``: ``x + last(pre(x)) * gate(mean(last(pre(x))))``,
  e.g. RCAB's channel attention) takes two passes. Pass 1 computes only ``z = pre(h)``, band by band, and
  sums it per channel over the image, over its first and last rows and columns, and at its corners. The
  mean of ``last(z)`` follows exactly, because each of the 3x3 convolution's taps sees the whole of ``z``
  except one edge row and/or column (zero padding). Pass 2 computes the block in full and adds it to the
  map in place; the rows a band still needs from above (already overwritten) are kept in a copy;
- a block that declares neither has no banded form: ``inference.exact_forward`` runs such a net whole.

Cost for RCAB: about 1.5x its convolutions of a whole-image pass; memory: one feature map plus band buffers.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.exactness import GlobalPooling, declared_pooling, declared_radius
from models.rcan import Block, MultiBlockNet

DEFAULT_BAND = 64


def blocks_of(model: nn.Module) -> list[Block] | None:
    """The blocks a ``Block`` or ``MultiBlockNet`` applies in turn; None for another network."""
    if isinstance(model, Block):
        return [model]
    if isinstance(model, MultiBlockNet):
        return list(model.blocks)
    return None


def has_banded_form(model: nn.Module) -> bool:
    """True for a Block or MultiBlockNet whose every residual block declares a receptive radius or a global
    pooling (``models.exactness``)."""
    blocks = blocks_of(model)
    return blocks is not None and all(declared_radius(unit) is not None or declared_pooling(unit) is not None
                                      for block in blocks for unit in block.body)


def map_rows(fn: Callable[[Tensor], Tensor], src: Tensor, dst: Tensor, halo: int, band: int) -> None:
    """``dst = fn(src)`` band by band, for a zero-padded stack of convolutions of total radius ``halo``.

    ``dst`` may be ``src`` itself (same shape): the rows above a band, already overwritten, are then read
    from a saved copy of their old values.
    """
    height = src.shape[2]
    band = max(band, halo)  # the saved copy must hold every overwritten row a later band reads
    in_place = dst is src
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


def _pre_sums(pooling: GlobalPooling, h: Tensor, band: int) -> _BorderSums:
    """The border sums of ``z = pooling.pre(h)``, computed band by band."""
    n, _c, height, _w = h.shape
    sums = _BorderSums(n, pooling.last.in_channels, h.device)
    halo = pooling.pre_radius
    for start in range(0, height, band):
        stop = min(height, start + band)
        top, bottom = max(0, start - halo), min(height, stop + halo)
        z = pooling.pre(h[:, :, top:bottom])[:, :, start - top:start - top + stop - start].double()
        sums.add_band(z, first=start == 0, last=stop == height)
    return sums


def pooled_mean(pooling: GlobalPooling, h: Tensor, band: int) -> Tensor:
    """Exact per-image, per-channel mean of ``last(pre(h))``: what the block's global pooling averages."""
    last = pooling.last
    if (last.kernel_size, last.stride, last.padding, last.dilation, last.groups, last.padding_mode) != \
            ((3, 3), (1, 1), (1, 1), (1, 1), 1, "zeros"):
        raise ValueError(f"GlobalPooling.last must be a 3x3 convolution, stride 1, zero padding 1, not {last}")
    sums = _pre_sums(pooling, h, band)
    weight = last.weight.double()
    summed = sum(sums.seen_by_tap(dy, dx) @ weight[:, :, dy, dx].T for dy in range(3) for dx in range(3))
    mean = summed / (h.shape[2] * h.shape[3])
    if last.bias is not None:
        mean += last.bias.double()
    return mean.to(h.dtype)


def pooled_in_place(pooling: GlobalPooling, h: Tensor, band: int) -> None:
    """``h = h + last(pre(h)) * gate(mean(last(pre(h))))``, band by band, with the exact global mean."""
    scale = pooling.gate(pooled_mean(pooling, h, band)[:, :, None, None])

    def body(window: Tensor) -> Tensor:
        return window + pooling.last(pooling.pre(window)) * scale

    map_rows(body, h, h, halo=pooling.pre_radius + 1, band=band)


def unit_in_place(unit: nn.Module, h: Tensor, band: int) -> None:
    """``h = unit(h)``, band by band, as ``unit`` declares it can be computed exactly (a radius, else a pooling)."""
    radius = declared_radius(unit)
    if radius is not None:
        map_rows(unit, h, h, halo=radius, band=band)
    else:
        pooled_in_place(declared_pooling(unit), h, band)


def block_forward(block: Block, x: Tensor, band: int = DEFAULT_BAND) -> Tensor:
    """``block(x)`` computed band by band: equal to the whole-image pass up to float rounding."""
    n, _c, height, width = x.shape
    h = x.new_empty(n, block.head.out_channels, height, width)
    map_rows(block.head, x, h, halo=1, band=band)
    for unit in block.body:
        unit_in_place(unit, h, band)
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
    if not has_banded_form(model):
        raise TypeError(f"banded_forward handles a Block or MultiBlockNet whose residual blocks declare "
                        f"receptive_radius or global_pooling (models.exactness), not this {type(model).__name__}")
    for block in blocks_of(model):
        x = block_forward(block, x, band)
    return x
