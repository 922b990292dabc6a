"""A script's settings block becomes its command line.

Every script opens with UPPER_CASE settings, each followed by a comment saying what it means and where
the value comes from. ``parse_cli`` turns them into ``--set NAME=VALUE`` overrides (typed by the default's
type), adds the common flags (``--data --out --device --seed --resume --config``) and lists every setting,
with its default and comment, in ``--help``.

Precedence, lowest first: the settings block, the preset it names (``PRESET``), ``--config`` (a run's
``settings.json``, replayed), ``--set``. ``resolve_settings`` also answers what ``--config`` and ``--set`` gave
(``given``), so a caller can compare it with a value recorded earlier (the multiblock phases do).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.errors import UserError, fail

SettingValue = int | float | bool | str | list | tuple


def resolve_data_root(arg: str | os.PathLike | None) -> Path:
    """The data root: ``arg`` (from --data), else env ``SR_DATA``, else ``./datasets``."""
    return Path(arg or os.environ.get("SR_DATA") or "datasets").expanduser()


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


_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _convert(default: SettingValue, text: str) -> SettingValue:
    """``text`` as the type of ``default``; ValueError when it does not parse."""
    if isinstance(default, bool):
        if text.strip().lower() not in _BOOLS:
            raise ValueError(text)
        return _BOOLS[text.strip().lower()]
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


def parse_assignments(known: dict[str, SettingValue], assignments: list[str]) -> dict[str, SettingValue]:
    """``NAME=VALUE`` strings parsed by the type of ``known[NAME]``; a name not in ``known`` is an error."""
    result: dict[str, SettingValue] = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        name = name.strip()
        if not sep:
            raise UserError(f"--set {assignment!r}: expected NAME=VALUE")
        if name not in known:
            raise UserError(f"--set {name}: unknown setting; known settings: {', '.join(sorted(known))}")
        result[name] = parse_value(name, known[name], text)
    return result


def _from_json(name: str, default: SettingValue, value: Any, source: Path) -> SettingValue:
    """A value read from a settings.json, converted as ``--set`` would convert its text (``shown``)."""
    try:
        if isinstance(value, list) != isinstance(default, (list, tuple)):
            raise ValueError(value)
        return _convert(default, shown(value))
    except ValueError:
        raise UserError(f"{source}: {name}={value!r} does not fit this setting (default {default!r}); "
                        "fix the file") from None


def read_config(path: Path, known: dict[str, SettingValue], section: str | None = None
                ) -> tuple[dict[str, SettingValue], int | None]:
    """(settings, seed) of a run's ``settings.json`` (or its ``section``, e.g. 'N2' of a multiblock run).

    UPPER_CASE keys are settings and must be known here; lower-case keys (data, device, ...) are records,
    except ``seed``, which is replayed too."""
    if not path.is_file():
        raise UserError(f"--config {path}: file not found; pass a run folder's settings.json")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"--config {path} is not valid JSON ({err}); pass a run folder's settings.json") from None
    sections = [key for key, value in record.items() if isinstance(value, dict)]
    if section is not None and sections:  # a multiblock run's settings.json: one section per network
        if section not in sections:
            raise UserError(f"--config {path} has no {section!r} section (it has: {', '.join(sections)}); run "
                            "the script that writes that section first, or pass another settings.json")
        record = record[section]
    settings = {}
    for name, value in record.items():
        if not name.isupper():
            continue
        if name not in known:
            raise UserError(f"--config {path}: unknown setting {name}; known settings: {', '.join(sorted(known))}")
        settings[name] = _from_json(name, known[name], value, path)
    seed = record.get("seed")
    return settings, seed if isinstance(seed, int) and not isinstance(seed, bool) else None


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one ``error:`` line and exit 2, like every user mistake; its
    ``epilog`` may be a function, called only when the help is shown (a script's settings, read from sources)."""

    def format_help(self) -> str:
        if callable(self.epilog):
            self.epilog = self.epilog()
        return super().format_help()

    def error(self, message: str):  # type: ignore[override]
        fail(f"{message} (see --help)")


@dataclass
class RunContext:
    """What a script runs with: the effective settings and the common flags, resolved (``parse_cli``).

    ``given``: the settings that ``--config`` or ``--set`` named, with their values (the block and the preset
    are not in it); ``origins``: where each value that is not the settings block's own came from
    (``"preset small"``, ``"--set"``, ``"--config runs/a/settings.json"``, ...), ``"seed"`` included."""

    settings: dict[str, SettingValue]
    data_root: Path
    out: Path
    device: torch.device
    seed: int
    resume: bool
    args: argparse.Namespace
    given: dict[str, SettingValue] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    command: str = ""  # the command line as typed (shell-quoted), for settings.json


def settings_report(settings: Mapping[str, SettingValue], origins: Mapping[str, str], seed: int,
                    names: Iterable[str], title: str) -> str:
    """The settings ``names`` with their values (and the seed), and beside each value that is not the file's
    own, where it came from: what a script prints (and logs) before it starts."""
    names = [name for name in names if name in settings]
    width = max((len(name) + len(shown(settings[name])) for name in names), default=0) + 3
    lines = [title]
    for name in [*names, "seed"]:
        value = seed if name == "seed" else settings[name]
        text = f"{name} = {shown(value) if value != '' else repr('')}"
        origin = origins.get(name)
        lines.append(f"  {text:<{width}}  <- {origin}" if origin else f"  {text}")
    return "\n".join(lines)


def shown(value: SettingValue) -> str:
    """A value as --set takes it: true/false, comma-separated lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return ",".join(map(shown, value)) if isinstance(value, (list, tuple)) else str(value)


def settings_help(settings: Mapping[str, SettingValue], comments: Mapping[str, str],
                  presets: dict[str, dict[str, SettingValue]] | None = None,
                  title: str = "settings (override with --set NAME=VALUE):") -> str:
    """The settings with their defaults and ``comments`` (``setting_comments``), and what each preset sets
    among them."""
    lines = [title, *(f"  {name}={shown(value)}  {comments.get(name, '')}".rstrip()
                      for name, value in settings.items())]
    return "\n".join([*lines, presets_help(presets, settings)] if presets else lines)


def presets_help(presets: dict[str, dict[str, SettingValue]], names: Iterable[str]) -> str:
    """One line per preset: the values it sets among ``names``."""
    names = set(names)
    lines = ["presets (--set PRESET=NAME; --set wins over a preset):"]
    for name, values in presets.items():
        values_set = [f"{key}={shown(value)}" for key, value in values.items() if key in names]
        lines.append(f"  {name}: {' '.join(values_set) if values_set else '(the settings as written)'}")
    return "\n".join(lines)


def add_common_args(parser: argparse.ArgumentParser, default_out: str,
                    flags: Iterable[str] = ("data", "out", "device", "seed", "resume", "config")) -> None:
    """``--set`` and the common ``flags`` that do something for this command."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="override a setting of the settings block (repeatable)")
    common = {
        "config": {"default": None, "metavar": "SETTINGS_JSON",
                   "help": "replay a run: start from the settings in a run folder's settings.json (--set still wins)"},
        "data": {"default": None, "help": "dataset root (default: $SR_DATA, else ./datasets)"},
        "out": {"default": default_out, "help": f"output folder (default: {default_out or 'none, nothing written'})"},
        "device": {"default": "auto", "metavar": "auto|cpu|cuda|cuda:N",
                   "help": "auto picks cuda when available; under torchrun each rank takes GPU LOCAL_RANK"},
        "seed": {"type": int, "default": None, "help": "random seed (default 0)"},
        "resume": {"action": "store_true", "help": "continue from the run folder's latest checkpoint"},
    }
    for flag, options in common.items():
        if flag in flags:
            parser.add_argument(f"--{flag}", **options)


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


def resolve_settings(block: dict[str, SettingValue], args: argparse.Namespace,
                     presets: dict[str, dict[str, SettingValue]] | None = None,
                     accepted: dict[str, SettingValue] | None = None, section: str | None = None
                     ) -> tuple[dict[str, SettingValue], dict[str, SettingValue], dict[str, str], int | None]:
    """(settings, given, origins, seed): block < preset < --config < --set; the seed of --seed, else of the
    config (None: neither gave one).

    ``accepted``: further names (with defaults, for typing) that ``--set``/``--config`` may give although
    the block lacks them; they land in ``given`` only."""
    known = {**(accepted or {}), **block}
    config_path = getattr(args, "config", None)
    config, seed = read_config(Path(config_path), known, section) if config_path else ({}, None)
    assigned = parse_assignments(known, getattr(args, "overrides", []))
    given = {**config, **assigned}
    settings, origins = dict(block), {}
    if presets is not None and "PRESET" in known:
        name = given.get("PRESET", settings.get("PRESET", known["PRESET"]))
        if name not in presets:
            raise UserError(f"PRESET={name!r}: expected one of {', '.join(presets)}")
        chosen = {key: value for key, value in presets[name].items() if key in block}
        settings.update(chosen)
        origins.update(dict.fromkeys(chosen, f"preset {name}"))
    for key, value in given.items():
        if key in block:
            settings[key] = value
        origins[key] = "--set" if key in assigned else f"--config {config_path}"
    if getattr(args, "seed", None) is not None:
        seed, origins["seed"] = args.seed, "--seed"
    elif seed is not None:
        origins["seed"] = f"--config {config_path}"
    return settings, given, origins, seed


def run_context(script_file: str, block: dict[str, SettingValue], args: argparse.Namespace,
                presets: dict[str, dict[str, SettingValue]] | None = None,
                accepted: dict[str, SettingValue] | None = None) -> RunContext:
    """Resolve parsed common flags, ``--config`` and ``--set`` against a script's settings ``block``."""
    settings, given, origins, seed = resolve_settings(block, args, presets, accepted)
    argv = getattr(args, "argv", None) or sys.argv[1:]
    return RunContext(settings, resolve_data_root(getattr(args, "data", None)), Path(getattr(args, "out", "") or ""),
                      resolve_device(getattr(args, "device", "auto")), seed if seed is not None else 0,
                      getattr(args, "resume", False), args, given, origins,
                      shlex.join(["python", Path(script_file).name, *argv]))


def parse_cli(namespace: dict[str, Any], argv: list[str] | None, description: str | None, default_out: str,
              accepted: dict[str, SettingValue] | None = None) -> RunContext:
    """Parse the command line of a script whose settings block is ``namespace`` (its ``globals()``)."""
    block, presets = collect_settings(namespace), namespace.get("PRESETS")
    parser = CliParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=settings_help(block, setting_comments(namespace["__file__"]), presets))
    add_common_args(parser, default_out)
    return run_context(namespace["__file__"], block, parser.parse_args(argv), presets, accepted)
