"""The phase settings that build a ``Block``, derived from the registered residual blocks' declarations:
their names, defaults, rules and comments; the ``Block`` arguments they give; the checks across them."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import UserError
from core.rules import Rule, at_least, one_of
from models.blocks.base import RESBLOCKS, BlockSetting

# The outer Block's settings (their defaults and comments: phase1_1.py) and the Block argument each gives.
BLOCK_ARGS = {"N_FEATS": "n_feats", "N_RESBLOCKS": "n_resblocks", "RESBLOCK": "resblock", "END_CONV": "end_conv"}


def block_settings() -> dict[str, BlockSetting]:
    """Every registered residual block's own settings, ``{NAME: BlockSetting}``, their comments naming it."""
    return {name: BlockSetting(setting.default, setting.rule, f"{setting.comment}; RESBLOCK={block.name} only")
            for block in RESBLOCKS.values() for name, setting in block.settings.items()}


def network_settings() -> tuple[str, ...]:
    """The names of the settings that build a Block: the outer Block's, then every residual block's own."""
    return (*BLOCK_ARGS, *block_settings())


def network_rules() -> dict[str, Rule]:
    """What each setting of ``network_settings`` may be (``core.rules``)."""
    rules = {"N_FEATS": at_least(1), "N_RESBLOCKS": at_least(0), "RESBLOCK": one_of(*RESBLOCKS)}
    return {**rules, **{name: setting.rule for name, setting in block_settings().items()}}


def own_options(resblock: str, values: Mapping[str, Any], key=str.upper) -> dict[str, Any]:
    """The constructor keywords of residual block ``resblock``'s own settings, read from ``values`` under
    ``key(keyword)`` (a setting's name, or the keyword itself); one missing there takes the declared default."""
    return {name.lower(): values.get(key(name.lower()), setting.default)
            for name, setting in RESBLOCKS[resblock].settings.items()}


def block_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``Block(**block_kwargs(settings))``: the arguments the phase settings give (what checkpoints record)."""
    resblock = str(settings["RESBLOCK"]).lower()
    outer = {arg: settings[name] for name, arg in BLOCK_ARGS.items()}
    return {**outer, "resblock": resblock, **own_options(resblock, settings)}


def recorded_block_kwargs(recorded: Mapping[str, Any]) -> dict[str, Any]:
    """The Block arguments a checkpoint's record holds (``block_kwargs``' keys); a residual block's setting
    that the record lacks (added after it was written) takes its default. KeyError when an outer one is
    missing, ValueError for a residual block that is not registered."""
    outer = {arg: recorded[arg] for arg in BLOCK_ARGS.values()}
    if outer["resblock"] not in RESBLOCKS:
        raise ValueError(f"resblock {outer['resblock']!r} is not registered")
    return {**outer, **own_options(outer["resblock"], recorded, key=str)}


def check_block_settings(settings: Mapping[str, Any]) -> None:
    """The chosen residual block's own check across its settings (``ResidualBlock.check``), as a UserError."""
    resblock = str(settings["RESBLOCK"]).lower()
    problem = RESBLOCKS[resblock].check(settings["N_FEATS"], **own_options(resblock, settings))
    if problem:
        raise UserError(problem)
