"""What exact bounded-memory inference needs to know about a network, declared by the network itself.

``inference`` (tiles, bands) reads declarations and never guesses them from a module's layers: a global
operation can hide in a ``forward`` (``x.mean()``) where no layer shows it, and a guess would then tile or
band such a module inexactly without an error.

- ``receptive_radius`` (an int attribute or property): the module is local. An output pixel depends only on
  the inputs at most this many input pixels away, with zero padding at the image borders. Such a module is
  exact on overlapping tiles and in bands of rows. An ``nn.Sequential`` declares the sum of its children's.
- ``layer_order()`` (a method returning a tuple of steps): the module's layer order, written once. Its forward
  pass runs the steps (``run_whole``), and banded inference (``inference.banded``) runs the same steps band
  by band. A step is ``Local`` (a map of known radius), ``Pooled`` (a product with a gate of the per-channel
  mean over the whole image: the one non-local kind) or ``Residual`` (its steps, plus their input).

A module that declares neither runs whole (``inference.exact_forward``), never on tiles or bands; so does a
``Local`` step whose radius is None.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn


class _ChannelMeanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.shape = x.shape
        return x.mean((2, 3), keepdim=True)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return (grad / (ctx.shape[2] * ctx.shape[3])).expand(ctx.shape)


class ChannelMean(nn.Module):
    """``nn.AdaptiveAvgPool2d(1)`` with the same values and gradients, and a faster backward.

    Autograd's own gradient of a mean is the broadcast gradient divided by H*W, written out as a
    contiguous (NCHW) map; adding it to the channels-last gradient of the attention's product then takes
    the slow mixed-layout path (10% of a bf16 block training step on the CPU, docs/benchmarks.md). Here the
    division is done on the (N, C, 1, 1) gradient and the result stays a broadcast view, which autograd adds
    to the other gradient in place: the same numbers (the same division of the same values), in any layout.
    """

    def forward(self, x: Tensor) -> Tensor:
        return _ChannelMeanFn.apply(x)


channel_mean = ChannelMean()


@dataclass(frozen=True)
class Local:
    """``h = fn(h)``, where an output pixel depends on the inputs at most ``radius`` pixels away (zero padding
    at the borders); ``radius=None``: not known to be local (the step, and its network, run only whole)."""

    fn: Callable[[Tensor], Tensor]
    radius: int | None


@dataclass(frozen=True)
class Pooled:
    """``h = h * gate(pool(h))``: ``pool`` the per-image, per-channel mean over the whole image, (N, C, H, W)
    -> (N, C, 1, 1), and ``gate`` (N, C, 1, 1) -> per-channel scales (channel attention). Banded inference
    computes the same mean over the bands instead of calling ``pool``."""

    gate: Callable[[Tensor], Tensor]
    pool: Callable[[Tensor], Tensor] = channel_mean


@dataclass(frozen=True)
class Residual:
    """``h = h + (steps applied to h)``."""

    steps: tuple[Step, ...]


Step = Local | Pooled | Residual


def run_whole(steps: Sequence[Step], x: Tensor) -> Tensor:
    """The steps over the whole image: what a module declaring ``layer_order()`` computes (its forward)."""
    for step in steps:
        if isinstance(step, Local):
            x = step.fn(x)
        elif isinstance(step, Pooled):
            x = x * step.gate(step.pool(x))
        else:
            x = x + run_whole(step.steps, x)
    return x


def steps_halo(steps: Sequence[Step]) -> int | None:
    """The rows of context a band of the steps needs: the sum of their local radii (a pooled step, given its
    mean, adds none); None when a radius is unknown."""
    total = 0
    for step in steps:
        radius = steps_halo(step.steps) if isinstance(step, Residual) else 0 if isinstance(step, Pooled) \
            else step.radius
        if radius is None:
            return None
        total += radius
    return total


def local_radius(steps: Sequence[Step]) -> int | None:
    """The receptive-field radius of steps that are all local (none pools the image), else None."""
    return None if _pools(steps) else steps_halo(steps)


def _pools(steps: Sequence[Step]) -> bool:
    return any(_pools(step.steps) if isinstance(step, Residual) else isinstance(step, Pooled) for step in steps)


def has_banded_steps(steps: Sequence[Step]) -> bool:
    """True when every step can be run in bands: no ``Local`` of unknown radius, at any depth."""
    return steps_halo(steps) is not None


def declared_radius(module: nn.Module) -> int | None:
    """The receptive-field radius ``module`` declares (``receptive_radius``; for an ``nn.Sequential``, the
    sum of its children's when every child declares one), or None."""
    if isinstance(module, nn.Sequential):
        radii = [declared_radius(child) for child in module]
        return None if None in radii else sum(radii)
    return getattr(module, "receptive_radius", None)


def declared_steps(module: nn.Module) -> tuple[Step, ...]:
    """The steps ``module`` declares (``layer_order()``), else the module as one step that runs only whole (or,
    when it declares a radius, as one local step)."""
    method = getattr(module, "layer_order", None)
    return tuple(method()) if callable(method) else (Local(module, declared_radius(module)),)
