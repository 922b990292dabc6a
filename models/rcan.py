"""The multiblock channel-attention network: one block N_i (or N_i^+), and N = N_k(...N_1(x)).

Layout follows the report (section 3.2, Fig 6) and its original code: head conv3x3(3->C), R residual
channel-attention blocks, an end conv3x3(C->C), a tail conv3x3(C->3), plus the block's input (global
residual). There is no long skip around the RCAB body, unlike RCAN's residual groups.

The residual block is a swappable part: ``models.blocks.RESBLOCKS`` names the designs a Block can repeat (the
run-wide setting ``RESBLOCK``), one file each in ``models/blocks/``. The Block declares its layer order as the
blocks do (``models.exactness``): its forward pass runs it, and so does exact banded inference.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.blocks import RESBLOCKS, block_settings
from models.blocks.base import conv3x3
from models.exactness import Local, Residual, Step, declared_steps, run_whole


class Block(nn.Module):
    """One block N_i; with ``clamp = True`` (toggle at run time) it is N_i^+, its output clamped to [0, 1].

    ``resblock`` names the residual block repeated ``n_resblocks`` times (``models.blocks.RESBLOCKS``), and
    ``options`` give its own settings by keyword (RCAB: ``reduction``, 4 in the report: 64 channels squeezed to
    16), the declared default for each one left out; a keyword another registered block declares is ignored.
    """

    def __init__(
        self,
        n_feats: int = 64,
        n_resblocks: int = 16,
        *,
        end_conv: bool = True,
        clamp: bool = False,
        in_channels: int = 3,
        resblock: str = "rcab",
        **options: int | float | bool | str,
    ) -> None:
        super().__init__()
        if resblock not in RESBLOCKS:
            raise ValueError(f"resblock {resblock!r}: expected one of {', '.join(RESBLOCKS)} (models.blocks)")
        unknown = set(options) - {name.lower() for name in block_settings()}
        if unknown:
            raise TypeError(f"Block: no registered residual block declares {', '.join(sorted(unknown))}")
        unit = RESBLOCKS[resblock]
        own = {name.lower(): options[name.lower()] for name in unit.settings if name.lower() in options}
        self.resblock = resblock
        self.clamp = clamp
        self.head = conv3x3(in_channels, n_feats)
        self.body = nn.Sequential(*(unit(n_feats, **own) for _ in range(n_resblocks)))
        self.end = conv3x3(n_feats, n_feats) if end_conv else nn.Identity()
        self.tail = conv3x3(n_feats, in_channels)

    def layer_order(self) -> tuple[Step, ...]:
        """x + tail(end(body(head(x)))), then the clamp of N_i^+; a residual block that declares no layer order
        is one step that runs only whole."""
        body = tuple(step for unit in self.body for step in declared_steps(unit))
        end = (Local(self.end, 1),) if isinstance(self.end, nn.Conv2d) else ()
        outer = Residual((Local(self.head, 1), *body, *end, Local(self.tail, 1)))
        return (outer, Local(_clamp01, 0)) if self.clamp else (outer,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_whole(self.layer_order(), x)


def _clamp01(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0.0, 1.0)


class MultiBlockNet(nn.Module):
    """N = N_k(...N_2(N_1(x))), the blocks kept in ``self.blocks`` so their weights can move in and out."""

    def __init__(self, blocks: Sequence[Block]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def to_block_state_dicts(self) -> list[dict]:
        """Hand the weights back to single blocks: the report's 'inverse analysis' (section 5.3)."""
        return [{k: v.detach().clone() for k, v in block.state_dict().items()} for block in self.blocks]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


def orthogonal_init_(module: nn.Module, gain: float = 1.0) -> nn.Module:
    """Orthogonal weights for every convolution (1x1 attention convs included), zero biases (report 4.1)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def normal_init_(module: nn.Module, std: float = 0.1) -> nn.Module:
    """N(0, std^2) weights and biases for every convolution: the report's toy model (section 3.1)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.normal_(m.bias, std=std)
    return module


def receptive_field_radius(model: nn.Module) -> int:
    """How many pixels away an input can still change an output pixel, in input pixels.

    Sums (k - 1) / 2 * dilation over all convolutions, which is exact for the serial stacks here (skips
    are shorter paths) and an upper bound otherwise. Global pooling (channel attention) is not counted:
    it is the one non-local part, see ``inference.tiling``. Raises ValueError when the model has no
    convolution or one that changes resolution, where this count means nothing.
    """
    radius, found = 0, False
    for m in model.modules():
        if isinstance(m, nn.ConvTranspose2d) or (isinstance(m, nn.Conv2d) and m.stride != (1, 1)):
            raise ValueError(f"receptive_field_radius: {type(m).__name__} (stride {m.stride}) is unsupported")
        if isinstance(m, nn.Conv2d):
            found = True
            radius += max((k - 1) // 2 * d for k, d in zip(m.kernel_size, m.dilation, strict=True))
    if not found:
        raise ValueError(f"receptive_field_radius: {type(model).__name__} has no convolution")
    return radius
