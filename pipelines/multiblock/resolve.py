"""A phase run resolved once: the command line, the settings and the run folder become one immutable ``Run``.

``resolve_run`` is the whole of a phase script's configuration. It reads the script's settings block, a
preset, ``--config`` (the script's section of a run's settings.json), ``--set`` and the run record
(``run.json``), checks every value (``phase_settings.RULES``), the run-wide agreement, the seed, the inputs the
phase needs, the data's fingerprint and the precision on this device, and decides what the script does
(``Plan``: run, already done, refused, redo with archive, branch, dry run), all before anything is written.
Training, regeneration and scoring receive the ``Run`` and read no settings, ``run.json`` or script source.

Precedence of a script's own settings: its block < a preset given here (``--set PRESET``, ``--config``, or the
block's own ``PRESET`` in phase1_1.py) < ``--config`` < ``--set``; a preset recorded by an earlier phase never
replaces what the file says. Run-wide settings (``RUN_WIDE``) come from the run's record when there is one; a
value given or written here that differs from it stops the script. ``LOCATION`` settings are defaults only.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from core.dist import DistInfo, init_distributed
from core.errors import UserError
from core.settings import (
    CliParser,
    add_common_args,
    collect_settings,
    resolve_data_root,
    resolve_device,
    resolve_settings,
    settings_report,
)
from data.pair_layouts import find_pairs, pair_set_name
from data.paired import Pair, lr_level_dir, pairs_with_lr_folder
from engine.speed import Speed, speed_from_settings
from models.blocks import block_settings
from pipelines.multiblock import chain
from pipelines.multiblock.chain import Phase
from pipelines.multiblock.phase_settings import (
    DEFAULT_OUT,
    LOCATION,
    PRESETS,
    RUN_WIDE,
    add_phase_args,
    catalogue,
    check_phase_settings,
    phase_help,
)
from pipelines.multiblock.rerun import Plan, decide, own_settings
from pipelines.multiblock.run_folder import (
    LR_SPLITS,
    check_data,
    check_lr_folder,
    find_record,
    new_record,
    pair_source,
)


@dataclass(frozen=True)
class Run:
    """One phase run, resolved and checked (``resolve_run``); nothing in it changes afterwards."""

    phase: Phase  # the script's row of the chain
    settings: Mapping[str, Any]
    origins: Mapping[str, str]  # where each value that is not the file's own came from ("seed" included)
    seed: int
    data_root: Path
    out: Path
    device: torch.device  # this rank's device
    dist: DistInfo
    resume: bool
    command: str  # the command line as typed (shell-quoted), for settings.json
    plan: Plan
    record: dict[str, Any] = field(default_factory=dict)  # run.json: the one recorded, or the one to write
    pairs: Mapping[str, list[Pair]] = field(default_factory=dict)  # the dataset's pairs (LR_0, HR) per split
    inputs: Mapping[str, list[Pair]] = field(default_factory=dict)  # the same with the phase's input LR_<reads>
    test_set: str = ""  # the test pairs' name in results.json, e.g. City100-iPhoneX-test
    header: str = ""  # the settings, each beside where it came from: printed and logged before any work
    speed: Speed = field(default_factory=Speed)  # the speed settings on this device (TF32 or strict fp32 too)
    branch_from: Path | None = None

    @property
    def script(self) -> str:
        return self.phase.script


def resolve_run(namespace: dict[str, Any], argv: list[str] | None, script: str) -> Run:
    """A phase script's command line, settings and run folder, resolved and checked (see the module
    docstring). Nothing is written; a mistake is one ``UserError`` line."""
    phase, block = chain.phase(script), collect_settings(namespace)
    parser = CliParser(description=namespace["__doc__"], epilog=lambda: phase_help(script, block),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, DEFAULT_OUT)
    add_phase_args(parser)
    args = parser.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    out, branch_from = Path(args.out), Path(args.branch_from) if args.branch_from else None
    record, source = recorded_run(out, branch_from, args.redo and phase is chain.FIRST)
    settings, origins, seed = layered(block, args, phase, record, source)
    check_phase_settings(settings, script)
    dist, device = init_distributed(resolve_device(args.device))
    speed = speed_from_settings(settings, device)  # PRECISION checked here, before any work
    data_root = resolve_data_root(args.data)
    header = settings_report(settings, origins, seed, [*own_settings(phase), *RUN_WIDE, *LOCATION],
                             f"{script} settings (own, then run-wide):")
    draft = Run(phase, MappingProxyType(settings), MappingProxyType(origins), seed, data_root, out, device, dist,
                args.resume, shlex.join(["python", script, *argv]), Plan("dry-run"), speed=speed,
                branch_from=branch_from, header=header, record=record)
    plan = decide(draft, args.redo, args.dry_run)
    if plan.action == "dry-run" or (plan.action == "skip" and not phase.writes):  # phase3.py still writes LR_3/
        return replace(draft, plan=plan)
    if plan.branch is None:
        check_inputs(draft)
    pairs = {split: find_pairs(data_root, pair_source(settings), split) for split in LR_SPLITS}
    if record:
        check_data(record, out, data_root, pairs)
    else:
        record = new_record(settings, RUN_WIDE, LOCATION, seed, data_root, pairs, script)
    inputs = {split: phase_inputs(pairs[split], out, phase.reads, split, branch_from if plan.branch else None)
              for split in LR_SPLITS}
    return replace(draft, plan=plan, record=record, pairs=MappingProxyType(pairs), inputs=MappingProxyType(inputs),
                   test_set=f"{pair_set_name(data_root, pair_source(settings))}-test")


def phase_inputs(pairs: list[Pair], out: Path, level: int, split: str, branch_from: Path | None) -> list[Pair]:
    """``pairs`` with the phase's input LR_<level> as their LR side (level 0: the dataset's LR). A branch reads
    the LR folder that ``start`` links into ``out`` from ``branch_from``: matched there, named at its place in
    ``out``."""
    if not level:
        return pairs
    found = pairs_with_lr_folder(pairs, lr_level_dir(branch_from or out, level, split))
    if branch_from is None:
        return found
    return [replace(pair, lr_path=out / pair.lr_path.relative_to(branch_from)) for pair in found]


def recorded_run(out: Path, branch_from: Path | None, first_redone: bool) -> tuple[dict[str, Any], Path]:
    """The record the run-wide settings come from: the run folder's; for ``--from``, the source run's; none
    when phase 1-1 is redone (its record is archived with everything else)."""
    if first_redone:
        return {}, out / "run.json"
    record, source = find_record(out)
    if not record and branch_from:
        return find_record(branch_from)
    return record, source


def layered(block: dict[str, Any], args: argparse.Namespace, phase: Phase, record: dict[str, Any],
            source: Path) -> tuple[dict[str, Any], dict[str, str], int]:
    """(settings, origins, seed): the script's own settings (block < preset < --config < --set), the run-wide
    ones (the record's, else stated here, else the preset's, else phase1_1.py's defaults) and the seed."""
    known, script = catalogue(), phase.script
    defaulted = {key: known[key] for key in (*RUN_WIDE, *LOCATION) if key not in block}  # phase1_1.py, models/blocks
    settings, given, origins, seed = resolve_settings({**block, **defaulted}, args, PRESETS, known, phase.section)
    by = record.get("recorded_by", chain.FIRST.script)
    recorded = {key: value for key, value in {**record.get("settings", {}), **record.get("location", {})}.items()
                if key in known}
    for key in RUN_WIDE:
        if key in defaulted:
            origins.setdefault(key, f"{'models/blocks' if key in block_settings() else chain.FIRST.script}'s default")
        if key in recorded:
            if (key in block or key in given) and settings[key] != recorded[key]:  # written here, or given
                where = origins.get(key) or f"written in {script}"
                raise UserError(f"{key}={settings[key]!r} ({where}) differs from {key}={recorded[key]!r} recorded in "
                                f"{source} by {by}; a run is one configuration: use the recorded value, start a new "
                                f"run with another --out, or restart this one with {chain.FIRST.script} --redo (its "
                                "phases are archived)")
            settings[key], origins[key] = recorded[key], f"{source.name} ({by})"
    for key in LOCATION:
        if key in recorded and key not in given:
            settings[key], origins[key] = recorded[key], f"{source.name} (a default)"
    if seed is not None and seed != record.get("seed", seed):
        raise UserError(f"--seed {seed} differs from seed {record['seed']} recorded in {source}; drop --seed or "
                        "start a new run with another --out")
    if seed is None and "seed" in record:
        seed, origins["seed"] = record["seed"], f"{source.name} ({by})"
    return settings, origins, seed if seed is not None else 0


def check_inputs(run: Run) -> None:
    """What the phase needs from earlier phases, present and current; a script run too early names the
    scripts to run first."""
    phase, out = run.phase, run.out
    missing = [name for name in phase.needs if not (out / f"{name}.pt").exists()]
    if phase is chain.LAST:
        if missing and str(run.settings["INIT"]).lower() == "blocks":
            first, last = chain.trainer(missing[0]).script, chain.trainer(phase.needs[-1]).script
            scripts = last if first == last else f"the phases from {first} to {last}"
            raise UserError(f"{phase.script} needs {', '.join(f'{name}.pt' for name in missing)} in {out}; run "
                            f"{scripts} first with the same --out, or set INIT=fresh")
        return
    if phase.network is None and missing:
        raise UserError(f"{phase.script} needs {out / (missing[0] + '.pt')}; run {chain.trainer(missing[0]).script} "
                        "first with the same --out")
    if phase.reads:
        check_lr_folder(out, phase.reads, run.record, phase.script, "with the same --out")
