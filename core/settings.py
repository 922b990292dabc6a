"""A script's settings block becomes its command line.

Every script opens with UPPER_CASE settings, each followed by a comment saying what it means and where
the value comes from. ``parse_cli`` turns them into ``--set NAME=VALUE`` overrides (typed by the default's
type), adds the common flags (``--data --out --device --seed --resume``) and lists every setting, with its
default and comment, in ``--help``.
"""
from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.errors import UserError, fail

SettingValue = int | float | bool | str | list | tuple
DEFAULT_DATA_ROOT = "datasets"


def resolve_data_root(arg: str | os.PathLike | None) -> Path:
    """The data root: ``arg`` (from --data), else env ``SR_DATA``, else ``./datasets``."""
    return Path(arg or os.environ.get("SR_DATA") or DEFAULT_DATA_ROOT).expanduser()


def collect_settings(namespace: dict[str, Any]) -> dict[str, SettingValue]:
    """The UPPER_CASE module globals of plain types, in definition order."""
    return {
        name: value
        for name, value in namespace.items()
        if name.isupper() and not name.startswith("_") and isinstance(value, SettingValue)
    }


def setting_comments(source_file: str | Path) -> dict[str, str]:
    """``NAME = value  # comment`` lines of a script, for --help."""
    pattern = re.compile(r"^([A-Z][A-Z0-9_]*)\s*=\s*.*?#\s*(.*)$")
    comments = {}
    for line in Path(source_file).read_text(encoding="utf-8").splitlines():
        match = pattern.match(line)
        if match:
            comments[match.group(1)] = match.group(2).strip()
    return comments


def _convert(default: SettingValue, text: str) -> SettingValue:
    """``text`` as the type of ``default``; ValueError when it does not parse."""
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(text)
    if isinstance(default, (int, float)):
        return type(default)(text)
    if isinstance(default, (list, tuple)):
        items = [item.strip() for item in text.split(",") if item.strip()]
        return type(default)(_convert(default[0], item) for item in items) if default else type(default)(items)
    return text


def parse_value(name: str, default: SettingValue, text: str) -> SettingValue:
    """Parse ``text`` by the type of ``default``; lists are comma-separated."""
    try:
        return _convert(default, text)
    except ValueError:
        kind = "true/false" if isinstance(default, bool) else type(default).__name__
        if isinstance(default, (list, tuple)) and default:
            kind = f"comma-separated list of {type(default[0]).__name__}"
        raise UserError(f"--set {name}={text!r}: expected {kind} (default is {default!r})") from None


def apply_overrides(settings: dict[str, SettingValue], assignments: list[str]) -> dict[str, SettingValue]:
    """Apply ``NAME=VALUE`` strings to a copy of ``settings``; unknown names are an error."""
    result = dict(settings)
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        name = name.strip()
        if not sep:
            raise UserError(f"--set {assignment!r}: expected NAME=VALUE")
        if name not in result:
            known = ", ".join(sorted(settings))
            raise UserError(f"--set {name}: unknown setting; known settings: {known}")
        result[name] = parse_value(name, settings[name], text)
    return result


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one ``error:`` line and exit 2, like every user mistake."""

    def error(self, message: str):  # type: ignore[override]
        fail(f"{message} (see --help)")


@dataclass
class RunContext:
    """What a script runs with: the effective settings and the common flags, resolved."""

    settings: dict[str, SettingValue]
    data_root: Path
    out: Path
    device: torch.device
    seed: int
    resume: bool
    args: argparse.Namespace


def settings_help(settings: dict[str, SettingValue], source_file: str | Path) -> str:
    comments = setting_comments(source_file)
    lines = ["settings (override with --set NAME=VALUE):"]
    for name, value in settings.items():
        shown = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        lines.append(f"  {name}={shown}  {comments.get(name, '')}".rstrip())
    return "\n".join(lines)


def add_common_args(parser: argparse.ArgumentParser, default_out: str) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="override a setting of the settings block (repeatable)")
    parser.add_argument("--data", default=None,
                        help="dataset root (default: $SR_DATA, else ./datasets)")
    parser.add_argument("--out", default=default_out, help=f"run folder (default: {default_out})")
    parser.add_argument("--device", default="auto", metavar="auto|cpu|cuda|cuda:N",
                        help="auto picks cuda when available; under torchrun each rank takes GPU LOCAL_RANK")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run folder's latest checkpoint")


def make_parser(namespace: dict[str, Any], description: str | None, default_out: str,
                common: bool = True) -> CliParser:
    settings = collect_settings(namespace)
    parser = CliParser(
        description=description,
        epilog=settings_help(settings, namespace["__file__"]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if common:
        add_common_args(parser, default_out)
    return parser


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    match = re.fullmatch(r"cpu|cuda(?::(\d+))?", name)
    if not match:
        raise UserError(f"--device {name}: expected auto, cpu, cuda or cuda:N")
    if name.startswith("cuda"):
        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if visible == 0:
            raise UserError(f"--device {name}: no CUDA GPU is visible to PyTorch; use --device cpu")
        if match.group(1) is not None and int(match.group(1)) >= visible:
            raise UserError(f"--device {name}: this process sees {visible} GPU(s), cuda:0 to cuda:{visible - 1}")
    return torch.device(name)


def context_from_args(namespace: dict[str, Any], args: argparse.Namespace) -> RunContext:
    """Resolve parsed common flags and ``--set`` overrides against a script's settings block."""
    settings = apply_overrides(collect_settings(namespace), args.overrides)
    return RunContext(
        settings=settings,
        data_root=resolve_data_root(args.data),
        out=Path(args.out),
        device=resolve_device(args.device),
        seed=args.seed,
        resume=args.resume,
        args=args,
    )


def parse_cli(namespace: dict[str, Any], argv: list[str] | None, description: str | None,
              default_out: str) -> RunContext:
    """Parse the command line of a script whose settings block is ``namespace`` (its ``globals()``)."""
    parser = make_parser(namespace, description, default_out)
    return context_from_args(namespace, parser.parse_args(argv))


def apply_preset(settings: dict[str, SettingValue], presets: dict[str, dict[str, SettingValue]],
                 overrides: list[str]) -> dict[str, SettingValue]:
    """Settings block < preset < explicit --set."""
    name = settings["PRESET"]
    if name not in presets:
        raise UserError(f"PRESET={name!r}: expected one of {', '.join(presets)}")
    explicit = {item.partition("=")[0].strip() for item in overrides}
    return {**settings, **{k: v for k, v in presets[name].items() if k not in explicit}}
