"""The multiblock channel-attention network: RCAB, one block N_i (or N_i^+), and N = N_k(...N_1(x)).

Layout follows the report (section 3.2, Fig 6) and its original code: head conv3x3(3->C), R residual
channel-attention blocks, an end conv3x3(C->C), a tail conv3x3(C->3), plus the block's input (global
residual). There is no long skip around the RCAB body, unlike RCAN's residual groups.

The residual block is a swappable part: ``RESBLOCKS`` names the designs a Block can repeat (the run-wide
setting ``RESBLOCK``); each declares what exact inference needs (``models.exactness``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from models.exactness import GlobalPooling


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1)


class _ChannelMeanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.shape = x.shape
        return x.mean((2, 3), keepdim=True)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return (grad / (ctx.shape[2] * ctx.shape[3])).expand(ctx.shape)


class ChannelMean(nn.Module):
    """``nn.AdaptiveAvgPool2d(1)`` with the same values and gradients, and a faster backward.

    Autograd's own gradient of a mean is the broadcast gradient divided by H*W, written out as a
    contiguous (NCHW) map; adding it to the channels-last gradient of the attention's product then takes
    the slow mixed-layout path (10% of a bf16 block training step on the CPU, docs/benchmarks.md). Here the
    division is done on the (N, C, 1, 1) gradient and the result stays a broadcast view, which autograd adds
    to the other gradient in place: the same numbers (the same division of the same values), in any layout.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ChannelMeanFn.apply(x)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: global average pool -> 1x1 conv C->C/r -> ReLU -> 1x1 conv -> sigmoid."""

    def __init__(self, n_feats: int, reduction: int = 4) -> None:
        super().__init__()
        self.pool = ChannelMean()
        self.down = nn.Conv2d(n_feats, n_feats // reduction, 1)
        self.up = nn.Conv2d(n_feats // reduction, n_feats, 1)

    def gate(self, pooled: torch.Tensor) -> torch.Tensor:
        """(N, C, 1, 1) channel means -> (N, C, 1, 1) scales in (0, 1)."""
        return torch.sigmoid(self.up(torch.relu(self.down(pooled))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.pool(x))


class RCAB(nn.Module):
    """Residual channel-attention block: x + CA(conv3x3(ReLU(conv3x3(x))))."""

    def __init__(self, n_feats: int, reduction: int = 4) -> None:
        super().__init__()
        self.conv1 = conv3x3(n_feats, n_feats)
        self.conv2 = conv3x3(n_feats, n_feats)
        self.attention = ChannelAttention(n_feats, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attention(self.conv2(torch.relu(self.conv1(x))))

    def global_pooling(self) -> GlobalPooling:
        """The attention pools ``conv2(relu(conv1(x)))`` over the image: all banded inference needs."""
        return GlobalPooling(pre=lambda x: torch.relu(self.conv1(x)), pre_radius=1, last=self.conv2,
                             gate=self.attention.gate)


class ResBlock(nn.Module):
    """Residual block without attention (as in EDSR): x + conv3x3(ReLU(conv3x3(x)))."""

    receptive_radius = 2  # two 3x3 convolutions: local (models.exactness)

    def __init__(self, n_feats: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(n_feats, n_feats)
        self.conv2 = conv3x3(n_feats, n_feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


# The residual blocks a Block can repeat, by the name the RESBLOCK setting gives: each entry builds one from
# (n_feats, reduction). A new design: its class (declaring receptive_radius or global_pooling, see
# models.exactness), and one line here.
RESBLOCKS: dict[str, Callable[[int, int], nn.Module]] = {
    "rcab": RCAB,  # the report's: conv3x3, ReLU, conv3x3, channel attention, + input
    "rb": lambda n_feats, _reduction: ResBlock(n_feats),  # the same without channel attention
}


class Block(nn.Module):
    """One block N_i; with ``clamp = True`` (toggle at run time) it is N_i^+, its output clamped to [0, 1].

    ``resblock`` names the residual block repeated ``n_resblocks`` times (``RESBLOCKS``). The report
    squeezes 64 channels to 16 in the attention, hence ``reduction=4``.
    """

    def __init__(
        self,
        n_feats: int = 64,
        n_resblocks: int = 16,
        reduction: int = 4,
        end_conv: bool = True,
        clamp: bool = False,
        in_channels: int = 3,
        resblock: str = "rcab",
    ) -> None:
        super().__init__()
        if resblock not in RESBLOCKS:
            raise ValueError(f"resblock {resblock!r}: expected one of {', '.join(RESBLOCKS)} (models.rcan.RESBLOCKS)")
        self.clamp = clamp
        self.head = conv3x3(in_channels, n_feats)
        self.body = nn.Sequential(*(RESBLOCKS[resblock](n_feats, reduction) for _ in range(n_resblocks)))
        self.end = conv3x3(n_feats, n_feats) if end_conv else nn.Identity()
        self.tail = conv3x3(n_feats, in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x + self.tail(self.end(self.body(self.head(x))))
        return out.clamp(0.0, 1.0) if self.clamp else out


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
