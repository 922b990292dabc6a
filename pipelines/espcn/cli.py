"""The ``espcn.py`` command line: train / eval / upscale / export subcommands over the settings block.

Each subcommand lists in its ``--help``, and accepts in ``--set``, only the settings it reads, and has only
the flags that do something there; ``train`` also shows what each preset sets and replays ``--config``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from core.errors import UserError
from core.settings import (
    CliParser,
    RunContext,
    add_common_args,
    collect_settings,
    run_context,
    setting_comments,
    settings_help,
)
from core.settings import settings_report as report
from inference.weight_files import FORMATS
from pipelines.espcn.common import DEFAULT_WEIGHTS, EVAL_OUT_DEFAULT
from pipelines.espcn.rules import check_espcn_settings

# Each subcommand imports only its own module (upscaling needs neither matplotlib nor the trainer).
SUBCOMMANDS = {"train": ("pipelines.espcn.train", "train"), "eval": ("pipelines.espcn.evaluate", "evaluate"),
               "upscale": ("pipelines.espcn.upscale", "upscale"), "export": ("pipelines.espcn.export", "export")}
UPSCALE_ONLY = ("INFERENCE", "UPSCALE_PRECISION", "VIDEO_CODEC", "VIDEO_CRF", "VIDEO_PRESET", "PNG_LEVEL")
# eval, upscale and export take scale, channels and features from the weights; only a plain third-party
# state dict, which records none, needs them as settings.
ARCHITECTURE = ("SCALE", "CHANNELS", "FEATURES")
EVAL_ONLY = ("EVAL_8BIT", "SAVE_IMAGES", "FIGURE", "FIGURE_CROP", "BASELINE_CACHE")
INFERENCE_ONLY = ("SELF_ENSEMBLE",)  # eval and upscale; never train (models are not selected with it)
READS = {"eval": (*ARCHITECTURE, "EVAL_SETS", "EVAL_TILE", *EVAL_ONLY, *INFERENCE_ONLY),
         "upscale": (*ARCHITECTURE, "EVAL_TILE", *UPSCALE_ONLY, *INFERENCE_ONLY),
         "export": ARCHITECTURE}
FLAGS = {"train": ("data", "out", "device", "seed", "resume", "config"), "eval": ("data", "out", "device"),
         "upscale": ("out", "device"), "export": ()}
HELP = {"train": "train on TRAIN_SET, then score EVAL_SETS", "eval": "score a checkpoint on HR folders (EVAL_SETS)",
        "upscale": "upscale images, folders or videos (no downscaling first)",
        "export": "write the weights as safetensors, ONNX or a plain state dict"}
DEFAULT_OUT = {"train": "runs/espcn", "eval": EVAL_OUT_DEFAULT, "upscale": "upscaled", "export": ""}


def subcommand_settings(namespace: dict[str, Any], command: str) -> dict[str, Any]:
    settings = collect_settings(namespace)
    if command == "train":
        return {name: value for name, value in settings.items()
                if name not in UPSCALE_ONLY + EVAL_ONLY + INFERENCE_ONLY}
    return {name: value for name, value in settings.items() if name in READS[command]}


def build_parser(namespace: dict[str, Any]) -> CliParser:
    everything, comments = collect_settings(namespace), setting_comments(namespace["__file__"])
    parser = CliParser(description=namespace["__doc__"], formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=settings_help(everything, comments, namespace["PRESETS"]))
    commands = parser.add_subparsers(dest="command", required=True, parser_class=CliParser)
    for command in SUBCOMMANDS:
        settings = subcommand_settings(namespace, command)
        presets = namespace["PRESETS"] if command == "train" else None
        sub = commands.add_parser(command, help=HELP[command], description=HELP[command],
                                  epilog=settings_help(settings, comments, presets),
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        add_common_args(sub, default_out=DEFAULT_OUT[command], flags=FLAGS[command])
        if command == "upscale":
            sub.add_argument("inputs", nargs="+", help="image files, folders of images, or videos")
            sub.add_argument("--overwrite", action="store_true", help="replace outputs already in --out")
        if command == "eval":
            sub.add_argument("--save-images", action="store_true", help="also write the SR images (SAVE_IMAGES)")
        if command == "export":
            sub.add_argument("--format", required=True, choices=list(FORMATS))
            sub.add_argument("--out", default="", help="output file (default: beside the weights, new suffix)")
        if command != "train":
            sub.add_argument("--weights", default=None, help=f"checkpoint (default: {DEFAULT_WEIGHTS.name})")
        else:
            sub.add_argument("--dry-run", action="store_true",
                             help="print the settings train would run with and where each came from; then exit")
    return parser


def settings_report(ctx: RunContext) -> str:
    """What ``espcn.py train`` prints (and logs) before it starts: every setting, and where each value that is
    not the settings block's own came from."""
    return report(ctx.settings, ctx.origins, ctx.seed, ctx.settings, "espcn.py train settings:")


def run(namespace: dict[str, Any], argv: list[str] | None) -> None:
    args = build_parser(namespace).parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the command settings.json records
    settings = subcommand_settings(namespace, args.command)
    for assignment in args.overrides:
        name = assignment.partition("=")[0].strip()
        if name in namespace and name not in settings and name.isupper():
            raise UserError(f"--set {name}: espcn.py {args.command} does not read this setting; it reads "
                            f"{', '.join(settings)} (see espcn.py {args.command} --help)")
    presets = namespace["PRESETS"] if args.command == "train" else None
    ctx = run_context(namespace["__file__"], settings, args, presets)
    check_espcn_settings(ctx.settings, settings)
    if args.command == "train":
        print(settings_report(ctx), flush=True)
        if args.dry_run:
            return
    module, function = SUBCOMMANDS[args.command]
    getattr(importlib.import_module(module), function)(ctx)
