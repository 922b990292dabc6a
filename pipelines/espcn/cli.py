"""The ``espcn.py`` command line: train / eval / upscale subcommands over the script's settings block."""
from __future__ import annotations

import argparse
import importlib
from typing import Any

from core.settings import (
    CliParser,
    add_common_args,
    apply_preset,
    collect_settings,
    context_from_args,
    settings_help,
)
from pipelines.espcn.common import DEFAULT_WEIGHTS, EVAL_OUT_DEFAULT

# Each subcommand imports only its own module (upscaling needs neither matplotlib nor the trainer).
SUBCOMMANDS = {"train": ("pipelines.espcn.train", "train"), "eval": ("pipelines.espcn.evaluate", "evaluate"),
               "upscale": ("pipelines.espcn.upscale", "upscale")}


def run(namespace: dict[str, Any], argv: list[str] | None) -> None:
    parser = CliParser(description=namespace["__doc__"],
                       epilog=settings_help(collect_settings(namespace), namespace["__file__"]),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=CliParser)
    train_parser = commands.add_parser("train", help="train on TRAIN_SET, then score EVAL_SETS")
    add_common_args(train_parser, default_out="runs/espcn")
    eval_parser = commands.add_parser("eval", help="score a checkpoint on HR folders (EVAL_SETS)")
    add_common_args(eval_parser, default_out=EVAL_OUT_DEFAULT)
    eval_parser.add_argument("--save-images", action="store_true", help="also write the SR images (SAVE_IMAGES)")
    upscale_parser = commands.add_parser("upscale", help="upscale images or folders (no downscaling first)")
    add_common_args(upscale_parser, default_out="upscaled")
    upscale_parser.add_argument("inputs", nargs="+", help="image files or folders of images")
    for sub in (eval_parser, upscale_parser):
        sub.add_argument("--weights", default=None, help=f"checkpoint (default: {DEFAULT_WEIGHTS.name})")
    args = parser.parse_args(argv)
    ctx = context_from_args(namespace, args)
    ctx.settings = apply_preset(ctx.settings, namespace["PRESETS"], args.overrides)
    module, function = SUBCOMMANDS[args.command]
    getattr(importlib.import_module(module), function)(ctx)
