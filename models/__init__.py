"""Models: ESPCN, and the multiblock channel-attention network (Block, MultiBlockNet; its residual blocks, one
file each, in models/blocks/), toy block."""
from models.blocks import RCAB, RESBLOCKS, ChannelAttention, NAFBlock, ResBlock
from models.espcn import ESPCN, espcn_param_groups
from models.rcan import (
    Block,
    MultiBlockNet,
    normal_init_,
    orthogonal_init_,
    receptive_field_radius,
)
from models.toy import ToyBlock

__all__ = [
    "ESPCN",
    "RCAB",
    "RESBLOCKS",
    "Block",
    "ChannelAttention",
    "MultiBlockNet",
    "NAFBlock",
    "ResBlock",
    "ToyBlock",
    "espcn_param_groups",
    "normal_init_",
    "orthogonal_init_",
    "receptive_field_radius",
]
