"""ESPCN (Shi et al. 2016): three convolutions in LR space, then a sub-pixel (pixel shuffle) upscale.

Initialisation: the paper does not state one. We keep PyTorch's default for ``nn.Conv2d`` (weights and
biases uniform in +-1/sqrt(fan_in)); with inputs in [0, 1] this keeps the tanh units in their linear range
at the start, and it is what a reader who re-implements the paper in PyTorch gets without extra code.
"""
from __future__ import annotations

import torch
from torch import nn


class ESPCN(nn.Module):
    """conv5x5(C->64) tanh, conv3x3(64->32) tanh, conv3x3(32->r^2 C), pixel shuffle by r."""

    receptive_radius = 4  # 2 + 1 + 1 LR pixels: local, exact on tiles (models.exactness)

    def __init__(self, scale: int = 3, channels: int = 1, features: tuple[int, int] = (64, 32)) -> None:
        super().__init__()
        self.scale = scale
        self.channels = channels
        f1, f2 = features
        self.conv1 = nn.Conv2d(channels, f1, 5, padding=2)
        self.conv2 = nn.Conv2d(f1, f2, 3, padding=1)
        self.conv3 = nn.Conv2d(f2, channels * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward_preshuffled(self, x: torch.Tensor) -> torch.Tensor:
        """The last convolution's output (N, r^2 C, h, w), to compare with pre-shuffled targets."""
        x = torch.tanh(self.conv1(x))
        x = torch.tanh(self.conv2(x))
        return self.conv3(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.forward_preshuffled(x))


def espcn_param_groups(model: ESPCN, lr: float, last_layer_factor: float = 0.1) -> list[dict]:
    """Optimizer groups for the paper's "the last layer learns 10 times slower".

    Each group carries ``lr_factor`` so a schedule can set ``group['lr'] = base_lr * group['lr_factor']``.
    """
    last = list(model.conv3.parameters())
    last_ids = {id(p) for p in last}
    features = [p for p in model.parameters() if id(p) not in last_ids]
    return [
        {"name": "features", "params": features, "lr": lr, "lr_factor": 1.0},
        {"name": "last", "params": last, "lr": lr * last_layer_factor, "lr_factor": last_layer_factor},
    ]


class PreshuffledView(nn.Module):
    """Calls ``espcn.forward_preshuffled``: the module a training loop (and DDP) wraps when the targets are
    pre-shuffled. It owns no parameters of its own, only the wrapped network's."""

    def __init__(self, espcn: ESPCN) -> None:
        super().__init__()
        self.espcn = espcn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.espcn.forward_preshuffled(x)
