"""Exact, low-memory inference of multiblock networks (``Block``, ``MultiBlockNet``), whatever their residual block.

Overlapping tiles reproduce a whole-image pass only for local networks; channel attention pools over the
whole image, so a tile's attention weights differ from the image's. This module runs a block's declared layer
order (``models.exactness``: ``Local``, ``Pooled`` and ``Residual`` steps, the same steps its forward pass
runs) over full-width bands of rows instead, keeping one C x H x W feature map that is updated in place:

- a ``Local`` step is mapped band by band with its radius in rows of context;
- a ``Residual`` of local and pooled steps (a residual block) is one band pass, in place, with the radius of
  all its steps as context, once the mean of each ``Pooled`` step is known. That mean is computed first, by a
  banded pass over the whole image of the steps before it (float64 sums, one band at a time). Shortcut: when
  the step before it is a 3x3 convolution (RCAB's conv2), the pass stops short of it and sums its input over
  the image, its first and last rows and columns and its corners; the mean of the convolution's output
  follows exactly, because each of its taps sees the whole input except one edge row and/or column (zero
  padding). The rows a band still needs from above (already overwritten) are kept in a copy;
- a ``Residual`` holding residuals (the ``Block`` around its residual blocks) runs its steps into a new map,
  then adds its input;
- a network that declares a step of unknown radius has no banded form: ``inference.exact_forward`` runs it whole.

Cost for RCAB: about 1.5x its convolutions of a whole-image pass; memory: one feature map plus band buffers.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from models.exactness import Local, Pooled, Residual, Step, has_banded_steps, steps_halo
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
    """True for a Block or MultiBlockNet whose every residual block declares its layer order or a receptive
    radius (``models.exactness``)."""
    blocks = blocks_of(model)
    return blocks is not None and all(has_banded_steps(block.layer_order()) for block in blocks)


def map_rows(fn: Callable[[Tensor], Tensor], src: Tensor, dst: Tensor | None, halo: int, band: int,
             reuse: bool = False) -> Tensor:
    """``dst = fn(src)`` band by band, for a zero-padded stack of convolutions of total radius ``halo``.

    ``dst`` may be ``src`` itself (same shape): the rows above a band, already overwritten, are then read
    from a saved copy of their old values. ``dst=None``: a new map, as wide in channels as ``fn``'s output,
    or ``src`` itself when ``reuse`` and ``fn`` keeps its shape.
    """
    n, channels, height, width = src.shape
    band = max(band, halo)  # the saved copy must hold every overwritten row a later band reads
    saved: Tensor | None = None
    for start in range(0, height, band):
        stop = min(height, start + band)
        top, bottom = max(0, start - halo), min(height, stop + halo)
        window = src[:, :, top:bottom] if saved is None else torch.cat([saved, src[:, :, start:bottom]], dim=2)
        rows = fn(window)[:, :, start - top:start - top + stop - start]
        if dst is None:
            same = reuse and rows.shape[1] == channels and rows.dtype == src.dtype
            dst = src if same else rows.new_empty(n, rows.shape[1], height, width)
        if dst is src:
            saved = src[:, :, max(0, stop - halo):stop].clone()
        dst[:, :, start:stop] = rows
    return dst


class _BorderSums:
    """Per-image, per-channel float64 sums of a feature map: the whole, its first and last rows and columns,
    and its four corners (``rows[..., 0]`` = first row, ``corners[..., row, col]``)."""

    def __init__(self) -> None:
        self.total = self.rows = self.cols = self.corners = None

    def add_band(self, z: Tensor, first: bool, last: bool) -> None:
        z = z.double()
        if self.total is None:
            n, c = z.shape[:2]
            self.total, self.rows = z.new_zeros(n, c), z.new_zeros(n, c, 2)
            self.cols, self.corners = z.new_zeros(n, c, 2), z.new_zeros(n, c, 2, 2)
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


def _is_plain_3x3(fn: Callable) -> bool:
    """A 3x3 convolution, stride 1, zero padding 1, no dilation or groups: the shortcut's condition."""
    return isinstance(fn, nn.Conv2d) and (fn.kernel_size, fn.stride, fn.padding, fn.dilation, fn.groups,
                                          fn.padding_mode) == ((3, 3), (1, 1), (1, 1), (1, 1), 1, "zeros")


def _run_window(steps: Sequence[Step], scales: list[Tensor], window: Tensor) -> Tensor:
    """Local and pooled ``steps`` on a band (with its context rows), each pooled step multiplying by its
    scale, already computed over the whole image."""
    scale = iter(scales)
    for step in steps:
        window = window * next(scale) if isinstance(step, Pooled) else step.fn(window)
    return window


def _band_sums(fn: Callable[[Tensor], Tensor], h: Tensor, halo: int, band: int) -> _BorderSums:
    """The border sums of ``fn(h)``, computed band by band."""
    height = h.shape[2]
    sums = _BorderSums()
    for start in range(0, height, band):
        stop = min(height, start + band)
        top, bottom = max(0, start - halo), min(height, stop + halo)
        sums.add_band(fn(h[:, :, top:bottom])[:, :, start - top:start - top + stop - start],
                      first=start == 0, last=stop == height)
    return sums


def pooled_mean(prefix: Sequence[Step], scales: list[Tensor], h: Tensor, band: int) -> Tensor:
    """Exact per-image, per-channel mean over the image of ``prefix`` (local and pooled steps, ``scales`` the
    pooled ones') applied to ``h``: what the pooled step after ``prefix`` averages. (N, C)."""
    pixels = h.shape[2] * h.shape[3]
    last = prefix[-1].fn if prefix and isinstance(prefix[-1], Local) else None
    if not _is_plain_3x3(last):
        sums = _band_sums(lambda window: _run_window(prefix, scales, window), h, steps_halo(prefix), band)
        return (sums.total / pixels).to(h.dtype)
    pre = prefix[:-1]
    sums = _band_sums(lambda window: _run_window(pre, scales, window), h, steps_halo(pre), band)
    weight = last.weight.double()
    summed = sum(sums.seen_by_tap(dy, dx) @ weight[:, :, dy, dx].T for dy in range(3) for dx in range(3))
    mean = summed / pixels
    if last.bias is not None:
        mean += last.bias.double()
    return mean.to(h.dtype)


def _fused(steps: Sequence[Step], h: Tensor, band: int, owned: bool, residual: bool) -> Tensor:
    """``steps(h)`` (plus ``h`` when ``residual``) for local and pooled steps: each pooled step's scale from its
    exact mean over the image, then one band pass, in place when ``h`` is ours to overwrite."""
    scales = []
    for i, step in enumerate(steps):
        if isinstance(step, Pooled):
            scales.append(step.gate(pooled_mean(steps[:i], scales, h, band)[:, :, None, None]))

    def body(window: Tensor) -> Tensor:
        out = _run_window(steps, scales, window)
        return window + out if residual else out

    return map_rows(body, h, None, halo=steps_halo(steps), band=band, reuse=owned)


def run_banded(steps: Sequence[Step], h: Tensor, band: int, owned: bool) -> Tensor:
    """The steps applied to ``h`` band by band; ``owned``: ``h`` may be overwritten (else it is kept)."""
    for step in steps:
        if not isinstance(step, Residual):
            h = _fused((step,), h, band, owned, residual=False)
        elif any(isinstance(inner, Residual) for inner in step.steps):
            out = run_banded(step.steps, h, band, owned=False)
            out += h
            h = out
        else:
            h = _fused(step.steps, h, band, owned, residual=True)
        owned = True
    return h


@torch.inference_mode()
def banded_forward(model: nn.Module, x: Tensor, band: int = DEFAULT_BAND) -> Tensor:
    """Exact inference of a ``Block`` or ``MultiBlockNet`` with one feature map of memory."""
    if not has_banded_form(model):
        raise TypeError(f"banded_forward handles a Block or MultiBlockNet whose residual blocks declare "
                        f"layer_order or receptive_radius (models.exactness), not this {type(model).__name__}")
    for i, block in enumerate(blocks_of(model)):
        x = run_banded(block.layer_order(), x, band, owned=i > 0)
    return x
