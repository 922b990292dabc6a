"""Edit, rerun, compare: what a phase script does on a run folder where it (or a later phase) already ran.

- A finished phase run again with the settings it recorded (``settings.json``) says "already done" and
  writes nothing; with other settings it stops with one line listing the differences and naming the ways on.
- ``--redo`` moves that phase's outputs and everything made from them (later ``N<i>``, ``LR_<i>``, their
  ``results.json`` entries and ``settings.json`` sections, logs, plots) into
  ``<run>/archive/<time>-<script>/``, a run-folder-like record that stays readable and comparable, then runs
  the phase again. Nothing is deleted.
- ``--from RUN`` starts a new run folder from RUN's outputs up to this phase: hard links (copies across file
  systems) of its networks and LR folders, their SHA-256 and run record checked, so that this phase alone
  runs there with new values while RUN keeps its results.
- ``--resume`` of an interrupted phase needs the settings it started with.
"""
from __future__ import annotations

import datetime
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.checkpoint import load_checkpoint
from core.dist import DistInfo, barrier
from core.errors import UserError
from core.runs import (
    describe_differences,
    read_json,
    run_lock_of_all_ranks,
    setting_differences,
    sha256,
    write_json,
)
from core.settings import RunContext
from pipelines.multiblock import chain
from pipelines.multiblock.chain import Phase
from pipelines.multiblock.phase_settings import LOCATION, RUN_WIDE, script_block, settings_report
from pipelines.multiblock.run_record import check_recorded_with, read_record, record_path

ARCHIVE = "archive"
NOT_COMPARED = ("TENSORBOARD",)  # how a run is watched, not what it computes
RUN_FILES = ("run.json", "settings.json", "results.json", "phases.png")


def outputs(phase: Phase, run: Path) -> list[Path]:
    """The files and folders of ``run`` that ``phase`` wrote: its network's and its LR folder."""
    found = []
    if phase.network:
        name = phase.network
        found += [run / f"{name}{suffix}.pt" for suffix in ("", "_latest", "_best")]
        found += [run / f"log_{name}.csv", run / f"curves_{name}.png", run / f"train_{name}.log",
                  run / "tensorboard" / name]
    if phase.writes:
        found.append(run / f"LR_{phase.writes}")
    return [path for path in found if path.exists()]


def own_settings(script: str) -> list[str]:
    """The settings ``script`` itself uses (its block, less the run-wide ones)."""
    return [key for key in script_block(script) if key not in (*RUN_WIDE, *LOCATION)]


def differences(ctx: RunContext, script: str, recorded: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{NAME: (recorded, now)}`` for this script's own settings (and the seed) that differ from ``recorded``."""
    names = [key for key in (*own_settings(script), "seed") if key not in NOT_COMPARED]
    return setting_differences(recorded, {**ctx.settings, "seed": ctx.seed}, names)


@dataclass(frozen=True)
class Plan:
    """What a phase script will do on its run folder: ``run`` (train / regenerate), ``skip`` (already done),
    with ``archive`` first when --redo finds outputs to move; ``diff`` what differs from the recorded run."""

    action: str
    archive: bool = False
    diff: dict[str, tuple[Any, Any]] | None = None
    message: str = ""


def plan(ctx: RunContext, script: str) -> Plan:
    """Decide, before any data is read, what ``script`` does on ``ctx.out`` (see the module docstring)."""
    step, run = chain.phase(script), ctx.out
    redo = ctx.args.redo
    later = [row for row in chain.from_here(script) if outputs(row, run)]
    if redo:
        return Plan("run", archive=bool(later), message=f"--redo: archiving {script}'s outputs and later ones"
                    if later else f"--redo: {script} has no outputs in {run} yet")
    if step.network is None:  # a regeneration: LR_<level>/manifest.json decides (regenerate skips a current one)
        return Plan("run")
    recorded = read_json(run / "settings.json").get(step.section, {})
    done = (run / f"{step.network}.pt").exists() and step.result in read_json(run / "results.json")
    diff = differences(ctx, script, recorded)
    if done and not diff:
        return Plan("skip", message=f"{script}: already done in {run} ({step.network}.pt, "
                                    f"results.json['{step.result}']) with these settings; nothing to do")
    changes = describe_differences(diff)
    if done:
        raise UserError(f"{script} already finished in {run} with other settings: {changes}; pass --redo to "
                        f"archive its outputs and everything made from them into {run / ARCHIVE}/ and run it again, "
                        f"or try the new values in a new folder with --out NEW --from {run}")
    latest = run / f"{step.network}_latest.pt"
    if latest.exists() and ctx.resume and diff:
        raise UserError(f"--resume continues the run in {latest}, which started with other settings: {changes};"
                        " resume with those values, or pass --redo to start this phase again with the new ones")
    return Plan("run", diff=diff)


def archive(run: Path, script: str, reason: str) -> Path:
    """Move ``script``'s outputs and every later phase's into ``<run>/archive/<time>-<script>/`` with their
    results.json entries and settings.json sections (the run's record copied; moved when phase 1-1 is redone);
    returns that folder."""
    steps = chain.from_here(script)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = run / ARCHIVE / f"{stamp}-{script.removesuffix('.py')}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = run / ARCHIVE / f"{stamp}-{script.removesuffix('.py')}-{suffix}"
    (folder / "tensorboard").mkdir(parents=True)
    for step in steps:
        for path in outputs(step, run):
            os.replace(path, folder / path.relative_to(run))
    _split_json(run / "results.json", folder / "results.json", {s.result for s in steps if s.result})
    _split_json(run / "settings.json", folder / "settings.json", {s.section for s in steps if s.network})
    if (run / "phases.png").exists():
        os.replace(run / "phases.png", folder / "phases.png")
    if record_path(run).exists():
        (os.replace if script == chain.FIRST.script else shutil.copy2)(record_path(run), folder / "run.json")
    if not any((folder / "tensorboard").iterdir()):
        (folder / "tensorboard").rmdir()
    write_json(folder / "archive.json", {"archived_from": str(run), "redone_by": script, "reason": reason,
                                         "time": stamp})
    print(f"archived the outputs of {script} and later phases into {folder}", flush=True)
    return folder


def _split_json(source: Path, target: Path, keys: set[str]) -> None:
    """``keys`` of the JSON object ``source`` move into ``target`` (written whole), the rest stays."""
    whole = read_json(source)
    moved = {key: value for key, value in whole.items() if key in keys}
    if moved:
        write_json(target, moved)
        write_json(source, {key: value for key, value in whole.items() if key not in keys})


def branch_sources(ctx: RunContext, script: str) -> list[Path] | None:
    """``--from SOURCE``: the outputs of SOURCE's phases before ``script`` that the new run folder reuses, each
    checked (present, complete, made by the networks beside it, of SOURCE's run record); None when
    ``ctx.out`` is a branch of SOURCE already. Nothing is written."""
    source, run = Path(ctx.args.branch_from), ctx.out
    record = read_record(source)
    if not record:
        raise UserError(f"--from {source}: no run there (no run.json); name a run folder the phase scripts wrote")
    mine = read_record(run)
    if mine:
        if mine.get("branched_from", {}).get("run") != str(source.resolve()):
            raise UserError(f"--from {source}: {run} already holds a run of its own ({record_path(run)}); "
                            "--from starts a new folder: choose another --out")
        return None
    if script == chain.FIRST.script:
        raise UserError(f"--from with {script}: it is the first phase, there is nothing to reuse; "
                        "start it in a new --out without --from")
    return _checked_sources(source, chain.before(script), record)


def branch(ctx: RunContext, script: str, checked: list[Path]) -> None:
    """Link (or copy) ``checked`` (``branch_sources``) into ``ctx.out`` with the run record, their settings.json
    sections and results.json entries; the record notes where the branch came from."""
    source, run = Path(ctx.args.branch_from), ctx.out
    needed = chain.before(script)
    for path in checked:
        _link_tree(path, run / path.relative_to(source))
    names = {step.section for step in needed if step.network}
    write_json(run / "settings.json", {k: v for k, v in read_json(source / "settings.json").items() if k in names})
    write_json(run / "results.json", {k: v for k, v in read_json(source / "results.json").items()
                                      if k in {step.result for step in needed}})
    write_json(record_path(run), {**read_record(source), "branched_from": {
        "run": str(source.resolve()), "up_to": script,
        "sha256": {p.name: sha256(p) for p in checked if p.suffix == ".pt"}}})
    print(f"branched {run} from {source}: reusing {', '.join(p.name for p in checked)}", flush=True)


def _checked_sources(source: Path, steps: tuple[Phase, ...], record: dict[str, Any]) -> list[Path]:
    """The files and folders of ``steps`` in ``source`` that a branch links: each network ``N<i>.pt`` (with
    its log and curves) and complete LR folder, checked to belong to ``record`` and to each other."""
    paths: list[Path] = []
    for step in steps:
        if step.network:
            weights = source / f"{step.network}.pt"
            if not weights.exists():
                raise UserError(f"--from {source}: {weights.name} is missing; run {step.script} there first, or "
                                f"branch from an earlier phase")
            check_recorded_with(weights, load_checkpoint(weights).get("meta", {}), record, source)
            paths += [p for p in (weights, source / f"log_{step.network}.csv", source / f"curves_{step.network}.png",
                                  source / f"train_{step.network}.log") if p.exists()]
        if step.writes:
            folder = source / f"LR_{step.writes}"
            manifest = read_json(folder / "manifest.json")
            if not manifest.get("complete"):
                raise UserError(f"--from {source}: LR_{step.writes}/ is missing or incomplete; run {step.script} "
                                f"there first")
            made_by = source / manifest.get("checkpoint", f"{step.lr_maker}.pt")
            if not made_by.exists() or manifest.get("checkpoint_sha256") != sha256(made_by):
                raise UserError(f"--from {source}: LR_{step.writes}/ was not made by the {made_by.name} beside it; "
                                f"rerun {step.script} there first")
            check_recorded_with(folder / "manifest.json", manifest, record, source)
            paths.append(folder)
    return paths


def _link_tree(source: Path, target: Path) -> None:
    """Hard links of ``source`` (a file, or a folder's files) at ``target``; copies where links cannot be made
    (another file system). Every later write of either run replaces files (atomic renames), so a link never
    lets one run change the other's files."""
    if source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        for child in source.iterdir():
            _link_tree(child, target / child.name)
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def prepare(ctx: RunContext, script: str, dist_info: DistInfo, check_inputs: Callable[[], None]) -> bool:
    """The start of every phase script: print the settings and where they came from (``--dry-run``: and what
    would happen, then stop); ``--from``: branch; ``check_inputs()`` (nothing archived is needed there);
    plan; ``--redo``: archive. False when there is nothing to do (already done, or a dry run)."""
    if dist_info.is_main:
        print(settings_report(ctx, script), flush=True)
    if ctx.args.dry_run:
        if ctx.args.branch_from:
            print(f"dry run: would start {ctx.out} from {ctx.args.branch_from}'s outputs before {script}, then run it")
        else:
            decided = plan(ctx, script)
            print(f"dry run: {decided.message or 'would run ' + script} (nothing was written)", flush=True)
        return False
    reused = branch_sources(ctx, script) if ctx.args.branch_from else None
    if reused is not None:
        with run_lock_of_all_ranks(ctx.out, dist_info):
            if dist_info.is_main:
                branch(ctx, script, reused)
            barrier(dist_info)
    check_inputs()
    decided = plan(ctx, script)
    if decided.archive:
        with run_lock_of_all_ranks(ctx.out, dist_info):
            if dist_info.is_main:
                archive(ctx.out, script, decided.message)
            barrier(dist_info)
    if decided.action == "skip":
        if dist_info.is_main:
            print(decided.message, flush=True)
        return False
    return True
