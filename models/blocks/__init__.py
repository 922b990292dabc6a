"""The residual blocks a ``Block`` can repeat (run-wide setting ``RESBLOCK``), one file each, and the phase
settings derived from what they declare (``models.blocks.base`` says what a block declares).

A new block: its file in this folder (a ``@register``-ed ``ResidualBlock``), and its module in the import
below, which registers it.
"""
from models.blocks import naf, rb, rcab  # noqa: F401  (registration: importing a block's file registers it)
from models.blocks.base import RESBLOCKS, BlockSetting, ResidualBlock, register
from models.blocks.naf import NAFBlock
from models.blocks.rb import ResBlock
from models.blocks.rcab import RCAB, ChannelAttention
from models.blocks.settings import (
    BLOCK_ARGS,
    block_kwargs,
    block_settings,
    check_block_settings,
    network_rules,
    network_settings,
    recorded_block_kwargs,
)

__all__ = [
    "BLOCK_ARGS",
    "RCAB",
    "RESBLOCKS",
    "BlockSetting",
    "ChannelAttention",
    "NAFBlock",
    "ResBlock",
    "ResidualBlock",
    "block_kwargs",
    "block_settings",
    "check_block_settings",
    "network_rules",
    "network_settings",
    "recorded_block_kwargs",
    "register",
]
