"""A NAFNet-style block (Chen et al. 2022, "Simple Baselines for Image Restoration", its first half, without
LayerNorm or learned residual scale): 1x1 conv C -> C*e, depthwise 3x3 conv, SimpleGate (C*e/2 channels),
simplified channel attention, 1x1 conv back to C, plus the input."""
from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from core.rules import at_least
from models.blocks.base import BlockSetting, ResidualBlock, register
from models.exactness import Local, Pooled, Residual, Step


def simple_gate(x: Tensor) -> Tensor:
    """NAFNet's activation: the first half of the channels times the second."""
    first, second = x.chunk(2, dim=1)
    return first * second


@register
class NAFBlock(ResidualBlock):
    """NAFNet-style block: x + conv1x1(SCA(SimpleGate(dwconv3x3(conv1x1(x))))), SCA = h * conv1x1(mean(h))."""

    name = "naf"
    settings: ClassVar = {
        "NAF_EXPANSION": BlockSetting(2, at_least(1), "width of the depthwise stage, N_FEATS * NAF_EXPANSION, halved "
                                                      "by the gate (NAFNet: 2)"),
    }

    @classmethod
    def check(cls, n_feats: int, naf_expansion: int) -> str | None:
        if n_feats * naf_expansion % 2:
            return (f"NAF_EXPANSION={naf_expansion}: SimpleGate halves N_FEATS * NAF_EXPANSION = "
                    f"{n_feats * naf_expansion} channels, which must be even")
        return None

    def __init__(self, n_feats: int, naf_expansion: int = settings["NAF_EXPANSION"].default) -> None:
        super().__init__()
        wide = n_feats * naf_expansion
        self.expand = nn.Conv2d(n_feats, wide, 1)
        self.depthwise = nn.Conv2d(wide, wide, 3, padding=1, groups=wide)
        self.attention = nn.Conv2d(wide // 2, wide // 2, 1)  # simplified channel attention: no squeeze, no sigmoid
        self.project = nn.Conv2d(wide // 2, n_feats, 1)

    def layer_order(self) -> tuple[Step, ...]:
        return (Residual((Local(self.expand, 0), Local(self.depthwise, 1), Local(simple_gate, 0),
                          Pooled(self.attention), Local(self.project, 0))),)
