"""What exact bounded-memory inference needs to know about a network, declared by the network itself.

``inference`` (tiles, bands) reads two declarations and never guesses them from a module's layers: a global
operation can hide in a ``forward`` (``x.mean()``) where no layer shows it, and a guess would then tile or
band such a module inexactly without an error.

- ``receptive_radius`` (an int attribute or property): the module is local. An output pixel depends only on
  the inputs at most this many input pixels away, with zero padding at the image borders. Such a module is
  exact on overlapping tiles and in bands of rows. An ``nn.Sequential`` declares the sum of its children's.
- ``global_pooling()`` (a method returning ``GlobalPooling``): the module is a residual unit whose only
  non-local operation is one per-channel mean over the image (channel attention); banded inference gets
  that mean exactly, then runs the rest in bands.

A module that declares neither runs whole (``inference.exact_forward``), never on tiles or bands.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn


@dataclass(frozen=True)
class GlobalPooling:
    """A unit computing ``x + f(x) * gate(mean(f(x)))``, with ``f(x) = last(pre(x))`` and the mean per image
    and channel over the whole image.

    ``pre``: local, of radius ``pre_radius``; ``last``: a 3x3 convolution, stride 1, zero padding 1 (the
    banded pass gets the mean of its output from sums of its input); ``gate``: (N, C, 1, 1) means ->
    (N, C, 1, 1) per-channel scales.
    """

    pre: Callable[[Tensor], Tensor]
    pre_radius: int
    last: nn.Conv2d
    gate: Callable[[Tensor], Tensor]


def declared_radius(module: nn.Module) -> int | None:
    """The receptive-field radius ``module`` declares (``receptive_radius``; for an ``nn.Sequential``, the
    sum of its children's when every child declares one), or None."""
    if isinstance(module, nn.Sequential):
        radii = [declared_radius(child) for child in module]
        return None if None in radii else sum(radii)
    return getattr(module, "receptive_radius", None)


def declared_pooling(module: nn.Module) -> GlobalPooling | None:
    """The ``GlobalPooling`` ``module`` declares (``global_pooling()``), or None."""
    method = getattr(module, "global_pooling", None)
    return method() if callable(method) else None
