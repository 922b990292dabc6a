"""Models: ESPCN, and the multiblock channel-attention network (RCAB, Block, MultiBlockNet), toy block."""
from models.espcn import ESPCN, espcn_param_groups
from models.rcan import (
    RCAB,
    RESBLOCKS,
    Block,
    ChannelAttention,
    MultiBlockNet,
    ResBlock,
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
    "ResBlock",
    "ToyBlock",
    "espcn_param_groups",
    "normal_init_",
    "orthogonal_init_",
    "receptive_field_radius",
]
