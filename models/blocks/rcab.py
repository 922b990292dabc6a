"""RCAB, the report's residual block: conv3x3, ReLU, conv3x3, channel attention, plus the input."""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from core.rules import at_least
from models.blocks.base import BlockSetting, ResidualBlock, conv3x3, register
from models.exactness import ChannelMean, Local, Pooled, Residual, Step


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: global average pool -> 1x1 conv C->C/r -> ReLU -> 1x1 conv -> sigmoid."""

    def __init__(self, n_feats: int, reduction: int = 4) -> None:
        super().__init__()
        self.pool = ChannelMean()
        self.down = nn.Conv2d(n_feats, n_feats // reduction, 1)
        self.up = nn.Conv2d(n_feats // reduction, n_feats, 1)

    def gate(self, pooled: Tensor) -> Tensor:
        """(N, C, 1, 1) channel means -> (N, C, 1, 1) scales in (0, 1)."""
        return torch.sigmoid(self.up(torch.relu(self.down(pooled))))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(self.pool(x))


@register
class RCAB(ResidualBlock):
    """Residual channel-attention block: x + CA(conv3x3(ReLU(conv3x3(x))))."""

    name = "rcab"
    settings: ClassVar = {
        "REDUCTION": BlockSetting(4, at_least(1), "channel-attention squeeze C -> C/REDUCTION (report: 64 -> 16)"),
    }

    @classmethod
    def check(cls, n_feats: int, reduction: int) -> str | None:
        if n_feats < reduction:
            return (f"REDUCTION={reduction}: the channel attention squeezes N_FEATS={n_feats} channels to "
                    "N_FEATS // REDUCTION, which must be at least 1")
        return None

    def __init__(self, n_feats: int, reduction: int = settings["REDUCTION"].default) -> None:
        super().__init__()
        self.conv1 = conv3x3(n_feats, n_feats)
        self.conv2 = conv3x3(n_feats, n_feats)
        self.attention = ChannelAttention(n_feats, reduction)

    def layer_order(self) -> tuple[Step, ...]:
        return (Residual((Local(lambda x: torch.relu(self.conv1(x)), 1), Local(self.conv2, 1),
                          Pooled(self.attention.gate, self.attention.pool))),)
