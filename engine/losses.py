"""Training losses by name: 'l1', 'mse', and L1 plus a weighted first-order gradient term (report sec. 6)."""
from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor

from core.errors import UserError


def gradient_difference(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute difference of 4-neighbour first-order differences (horizontal and vertical)."""
    dx = (pred[..., :, 1:] - pred[..., :, :-1]) - (target[..., :, 1:] - target[..., :, :-1])
    dy = (pred[..., 1:, :] - pred[..., :-1, :]) - (target[..., 1:, :] - target[..., :-1, :])
    return 0.5 * (dx.abs().mean() + dy.abs().mean())


def make_loss(name: str, grad_weight: float = 0.0) -> Callable[[Tensor, Tensor], Tensor]:
    """``grad_weight`` > 0 adds the gradient term to L1 or MSE."""
    base = {"l1": F.l1_loss, "mse": F.mse_loss}.get(name.lower())
    if base is None:
        raise UserError(f"LOSS={name!r}: expected 'l1' or 'mse'")
    if grad_weight == 0.0:
        return base

    def loss(pred: Tensor, target: Tensor) -> Tensor:
        return base(pred, target) + grad_weight * gradient_difference(pred, target)

    return loss

