"""Models: ESPCN, and the multiblock channel-attention network (RCAB, Block, MultiBlockNet), toy block."""
import importlib

# Loaded on first use (PEP 562): a phase script's --help or a multiblock run imports models.rcan alone, never ESPCN.
_HOME = {"ESPCN": "espcn", "espcn_param_groups": "espcn", "ToyBlock": "toy", "receptive_field_radius": "rcan",
         "RCAB": "rcan", "RESBLOCKS": "rcan", "Block": "rcan", "ChannelAttention": "rcan", "MultiBlockNet": "rcan",
         "ResBlock": "rcan", "normal_init_": "rcan", "orthogonal_init_": "rcan"}

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


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f"models.{_HOME[name]}"), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
