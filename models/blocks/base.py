"""What a residual block declares, and the register of the blocks a ``Block`` can repeat (``RESBLOCK``).

A residual block is one file in ``models/blocks/``: a ``ResidualBlock`` subclass, decorated ``@register``,
that declares

- ``name``: the value of the run-wide setting ``RESBLOCK`` that picks it;
- ``settings``: its own settings, ``{NAME: BlockSetting(default, rule, comment)}``. They are run-wide settings
  of the phase scripts (``--set NAME=VALUE``, checked by the rule, recorded in run.json and in every
  checkpoint) and reach the constructor as the keyword ``NAME.lower()``: ``__init__(n_feats, **settings)``.
  A setting added to an existing block later must default to what the block did before it: checkpoints
  written before it load with that default;
- ``check(n_feats, **settings)`` (optional): a message when the values cannot build the block;
- ``layer_order()``: its layers as steps (``models.exactness``): the forward pass runs them, and so does
  exact banded inference, which needs nothing else.

``models/blocks/__init__.py`` imports each block's file, which registers it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from core.rules import Rule
from models.exactness import Step, local_radius, run_whole


@dataclass(frozen=True)
class BlockSetting:
    """One setting of a residual block: its default, what it may be, and what it means (for --help)."""

    default: int | float | bool | str
    rule: Rule
    comment: str


class ResidualBlock(nn.Module):
    """A residual block of ``n_feats`` channels in and out; see the module docstring for what it declares."""

    name: ClassVar[str]
    settings: ClassVar[dict[str, BlockSetting]] = {}

    @classmethod
    def check(cls, n_feats: int, **settings) -> str | None:
        """Why these values cannot build the block (one line), or None."""
        return None

    def layer_order(self) -> tuple[Step, ...]:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return run_whole(self.layer_order(), x)

    @property
    def receptive_radius(self) -> int | None:
        """The radius its steps add up to when none of them pools the image (``models.exactness``), else None."""
        return local_radius(self.layer_order())


RESBLOCKS: dict[str, type[ResidualBlock]] = {}  # name -> class, in the order the blocks were registered


def register(block: type[ResidualBlock]) -> type[ResidualBlock]:
    """Make ``block`` a choice of ``RESBLOCK``, its settings phase settings (a class decorator)."""
    taken = {name for other in RESBLOCKS.values() if other is not block for name in other.settings}
    if block.name in RESBLOCKS and RESBLOCKS[block.name] is not block:
        raise ValueError(f"residual block name {block.name!r} is registered twice")
    if taken & set(block.settings):
        raise ValueError(f"{block.__name__} declares {', '.join(sorted(taken & set(block.settings)))}, which "
                         "another residual block declares too; prefix a block's settings with its name")
    RESBLOCKS[block.name] = block
    return block


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1)
