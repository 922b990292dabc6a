"""The residual block without attention (as in EDSR): RCAB less its channel attention."""
from __future__ import annotations

import torch

from models.blocks.base import ResidualBlock, conv3x3, register
from models.exactness import Local, Residual, Step


@register
class ResBlock(ResidualBlock):
    """Residual block without attention (as in EDSR): x + conv3x3(ReLU(conv3x3(x)))."""

    name = "rb"

    def __init__(self, n_feats: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(n_feats, n_feats)
        self.conv2 = conv3x3(n_feats, n_feats)

    def layer_order(self) -> tuple[Step, ...]:
        return (Residual((Local(lambda x: torch.relu(self.conv1(x)), 1), Local(self.conv2, 1))),)
