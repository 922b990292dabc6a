"""Models: ESPCN, and the multiblock channel-attention network (Block, MultiBlockNet; its residual blocks, one
file each, in models/blocks/), toy block."""
import importlib

# Loaded on first use (PEP 562): a phase script's --help or a multiblock run imports models.rcan alone, never ESPCN.
_HOME = {"ESPCN": "espcn", "espcn_param_groups": "espcn", "ToyBlock": "toy", "receptive_field_radius": "rcan",
         "RCAB": "blocks", "RESBLOCKS": "blocks", "Block": "rcan", "ChannelAttention": "blocks", "NAFBlock": "blocks",
         "MultiBlockNet": "rcan", "ResBlock": "blocks", "normal_init_": "rcan", "orthogonal_init_": "rcan"}

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


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f"models.{_HOME[name]}"), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
