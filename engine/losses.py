"""Training losses by name and weight: the LOSS setting is a sum of terms ``[weight*]name`` joined by ``+``
(``"l1"``, ``"l1 + 0.1*grad"``, ``"l1 + 0.2*ssim"``), names without case, a weight a number > 0 (default 1).

Each term is one function ``(pred, target) -> scalar tensor`` registered here by ``@term``. A new one is that
function alone, in this file; every training script's LOSS then accepts its name, and the settings check
(``LOSS_RULE``) refuses an unknown name or a bad weight in one line naming the terms there are::

    @term("charbonnier")
    def charbonnier(pred: Tensor, target: Tensor) -> Tensor:
        return ((pred - target).square() + 1e-6).sqrt().mean()
"""
from __future__ import annotations

import contextlib
import functools
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import torch
import torch.nn.functional as F
from torch import Tensor

from core.errors import UserError
from core.rules import Rule

LossFn = Callable[[Tensor, Tensor], Tensor]
Terms = tuple[tuple[float, str], ...]  # (weight, name) per term

TERMS: dict[str, LossFn] = {}  # name -> term, in the order registered


def term(name: str) -> Callable[[LossFn], LossFn]:
    """Registers the decorated ``(pred, target) -> loss`` function as the LOSS term ``name`` (without case)."""
    def register(function: LossFn) -> LossFn:
        TERMS[name.lower()] = function
        return function

    return register


term("l1")(F.l1_loss)  # the report's loss
term("mse")(F.mse_loss)  # ESPCN's


@term("grad")
def gradient_difference(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute difference of 4-neighbour first-order differences (horizontal and vertical); the report's
    sec. 6 term."""
    dx = (pred[..., :, 1:] - pred[..., :, :-1]) - (target[..., :, 1:] - target[..., :, :-1])
    dy = (pred[..., 1:, :] - pred[..., :-1, :]) - (target[..., 1:, :] - target[..., :-1, :])
    return 0.5 * (dx.abs().mean() + dy.abs().mean())


@term("ssim")
def ssim_loss(pred: Tensor, target: Tensor) -> Tensor:
    """1 - SSIM: the metric's SSIM (``inference.metrics.ssim`` of RGB, no shave, white = 1: the window and
    constants of ``data.ssim_window``, 'valid' filtering, the map's mean over channels and images), in the
    inputs' precision and differentiable. The window's module is imported here, where the term is used: a
    phase script's --help lists the terms without it."""
    from data.ssim_window import K1, K2, WINDOW_RADIUS

    side = 2 * WINDOW_RADIUS + 1
    if min(pred.shape[-2:]) < side:
        raise UserError(f"the ssim loss term needs patches of at least {side}x{side} pixels, got "
                        f"{tuple(pred.shape[-2:])}; raise the patch size or leave ssim out of LOSS")
    channels = 5 * pred.shape[1]  # five maps per channel: pred, target, their squares and their product
    maps = torch.cat([pred, target, pred * pred, target * target, pred * target], dim=1)
    taps = _taps(pred.device, pred.dtype)
    maps = F.conv2d(maps, taps.view(1, 1, 1, side).expand(channels, 1, 1, side), groups=channels)
    maps = F.conv2d(maps, taps.view(1, 1, side, 1).expand(channels, 1, side, 1), groups=channels)
    mu_p, mu_t, pp, tt, pt = maps.chunk(5, dim=1)
    c1, c2 = K1**2, K2**2
    mu_pt, mu_pp, mu_tt = mu_p * mu_t, mu_p.square(), mu_t.square()
    similarity = ((2 * mu_pt + c1) * (2 * (pt - mu_pt) + c2)) / ((mu_pp + mu_tt + c1) * (pp - mu_pp + tt - mu_tt + c2))
    return 1 - similarity.mean()


@functools.cache
def _taps(device: torch.device, dtype: torch.dtype) -> Tensor:
    from data.ssim_window import gaussian_window

    return gaussian_window(dtype).to(device)


FORM = "terms [weight*]name joined by '+', e.g. 'l1 + 0.1*grad'"
_PLUS = re.compile(r"(?<![0-9.][eE])\+")  # '+' between terms, not in a weight's exponent (1e+3)


def parse_loss(text: str) -> Terms:
    """``"l1 + 0.1*grad"`` -> ``((1.0, 'l1'), (0.1, 'grad'))``; a ValueError says what is wrong, the form and the
    registered terms."""
    terms: list[tuple[float, str]] = []
    for part in _PLUS.split(str(text)):
        weight_text, star, name = part.rpartition("*")
        name = name.strip().lower()
        if name not in TERMS:
            _refuse(f"unknown term {name!r}" if name else "an empty term")
        try:
            weight = float(weight_text) if star else 1.0
        except ValueError:
            weight = math.nan
        if not (math.isfinite(weight) and weight > 0):
            _refuse(f"the weight of {name!r} must be a number > 0, got {weight_text.strip()!r}")
        if name in (known for _, known in terms):
            _refuse(f"{name!r} is named twice")
        terms.append((weight, name))
    return tuple(terms)


def _refuse(problem: str) -> NoReturn:
    raise ValueError(f"{problem}; expected {FORM}; terms: {', '.join(TERMS)}")


LOSS_RULE = Rule(parse=parse_loss)  # the LOSS setting of every training script


def make_loss(text: str) -> LossFn:
    """The loss that LOSS=``text`` names: one unweighted term is its function, a sum adds the weighted terms."""
    try:
        terms = parse_loss(text)
    except ValueError as err:
        raise UserError(f"LOSS={text!r}: {err}") from None
    if len(terms) == 1 and terms[0][0] == 1.0:
        return TERMS[terms[0][1]]

    def loss(pred: Tensor, target: Tensor) -> Tensor:
        return sum(weight * TERMS[name](pred, target) for weight, name in terms)

    return loss


def spelled(terms: Terms) -> str:
    """One spelling per sum of terms: ``"l1 + 0.1*grad"`` (weight 1 left out)."""
    return " + ".join(name if weight == 1 else f"{weight!r}*{name}" for weight, name in terms)


def comparable_loss(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` (or a settings.json record of them) with LOSS in one spelling, so that the same loss compares
    equal however it is written; a record from before the terms had names, with GRAD_LOSS_WEIGHT=w beside
    LOSS, reads as ``LOSS + w*grad`` (w = 0: LOSS alone)."""
    settings = dict(settings)
    weight = settings.pop("GRAD_LOSS_WEIGHT", 0)
    if "LOSS" in settings:
        text = f"{settings['LOSS']} + {weight!r}*grad" if weight else settings["LOSS"]
        with contextlib.suppress(ValueError):  # a value the settings check refuses is compared as written
            settings["LOSS"] = spelled(parse_loss(text))
    return settings
