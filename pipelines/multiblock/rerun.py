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

What a script does is decided here, before anything is written (``decide``: the run's ``Plan``, called while
``resolve`` resolves the run), and done here too: ``start`` branches and archives.
"""
from __future__ import annotations

import datetime
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.checkpoint import load_checkpoint
from core.dist import barrier
from core.errors import UserError
from core.runs import read_json, run_lock_of_all_ranks, setting_changes, sha256, write_json
from engine.losses import comparable_loss
from pipelines.multiblock import chain
from pipelines.multiblock.chain import Phase
from pipelines.multiblock.phase_settings import LOCATION, RUN_WIDE, script_block
from pipelines.multiblock.run_folder import check_lr_folder, check_recorded_with, read_record, record_path

if TYPE_CHECKING:
    from pipelines.multiblock.resolve import Run

ARCHIVE = "archive"
NOT_COMPARED = ("TENSORBOARD",)  # how a run is watched, not what it computes


@dataclass(frozen=True)
class Plan:
    """What the script does on its run folder: ``run``, ``skip`` (already done) or ``dry-run``; ``archive``:
    --redo moves outputs first; ``branch``: --from links these checked outputs of another run first."""

    action: str
    message: str = ""
    archive: bool = False
    branch: tuple[Path, ...] | None = None


def own_settings(phase: Phase) -> list[str]:
    """The settings ``phase``'s script itself uses: its block, less the run-wide ones."""
    return [key for key in script_block(phase.script) if key not in (*RUN_WIDE, *LOCATION)]


def decide(run: Run, redo: bool, dry_run: bool) -> Plan:
    """What the script does on ``run.out`` (the module docstring says why); nothing is written here."""
    phase, out = run.phase, run.out
    if dry_run:
        what = (f"would start {out} from {run.branch_from}'s outputs before {run.script}, then run it"
                if run.branch_from else decide(run, redo, False).message or f"would run {run.script}")
        return Plan("dry-run", f"dry run: {what} (nothing was written)")
    reused = branch_sources(run.branch_from, out, run.script) if run.branch_from else None
    branch = tuple(reused) if reused is not None else None
    if redo:
        later = [row for row in chain.from_here(run.script) if outputs(row, out)]
        return Plan("run", f"--redo: archiving {run.script}'s outputs and later ones" if later
                    else f"--redo: {run.script} has no outputs in {out} yet", archive=bool(later), branch=branch)
    if phase.network is None or branch is not None:  # a regeneration: LR_<writes>/manifest.json decides
        return Plan("run", branch=branch)
    names = [key for key in (*own_settings(phase), "seed") if key not in NOT_COMPARED]
    recorded = read_json(out / "settings.json").get(phase.section, {})
    changes = setting_changes(comparable_loss(recorded), comparable_loss({**run.settings, "seed": run.seed}), names)
    done = (out / f"{phase.network}.pt").exists() and phase.result in read_json(out / "results.json")
    if done and not changes:
        return Plan("skip", f"{run.script}: already done in {out} ({phase.network}.pt, "
                            f"results.json['{phase.result}']) with these settings; nothing to do")
    if done:
        raise UserError(f"{run.script} already finished in {out} with other settings: {changes}; pass --redo to "
                        f"archive its outputs and everything made from them into {out / 'archive'}/ and run it "
                        f"again, or try the new values in a new folder with --out NEW --from {out}")
    latest = out / f"{phase.network}_latest.pt"
    if latest.exists() and not run.resume:
        raise UserError(f"{latest} already holds a run; pass --resume to continue it, --redo to start it "
                        "again (the old one archived), or choose another --out")
    if latest.exists() and run.resume and changes:
        raise UserError(f"--resume continues the run in {latest}, which started with other settings: {changes};"
                        " resume with those values, or pass --redo to start this phase again with the new ones")
    return Plan("run")


def outputs(phase: Phase, run: Path, reused: bool = False) -> list[Path]:
    """The files and folders of ``run`` that ``phase`` wrote: its network's and its LR folder; ``reused``: those
    a branch reuses (not the resume state, the best so far or the tensorboard logs)."""
    found, name = [], phase.network
    if name:
        found += [run / f"{name}.pt", run / f"log_{name}.csv", run / f"curves_{name}.png", run / f"train_{name}.log"]
        found += [] if reused else [run / f"{name}_latest.pt", run / f"{name}_best.pt", run / "tensorboard" / name]
    if phase.writes:
        found.append(run / f"LR_{phase.writes}")
    return [path for path in found if path.exists()]


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


def branch_sources(source: Path, run: Path, script: str) -> list[Path] | None:
    """``--from SOURCE``: the outputs of SOURCE's phases before ``script`` that the new run folder ``run``
    reuses, each checked (present, complete, made by the networks beside it, of SOURCE's run record); None
    when ``run`` is a branch of SOURCE already. Nothing is written."""
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


def branch(run: Run) -> None:
    """Link (or copy) the checked outputs of ``run.plan.branch`` (``branch_sources``) from ``run.branch_from`` into
    ``run.out`` with the run record (``run.record``: the source's), their settings.json sections and results.json
    entries; the record notes where the branch came from."""
    source, needed, checked = run.branch_from, chain.before(run.script), run.plan.branch
    for path in checked:
        _link_tree(path, run.out / path.relative_to(source))
    names = {step.section for step in needed if step.network}
    write_json(run.out / "settings.json", {k: v for k, v in read_json(source / "settings.json").items() if k in names})
    write_json(run.out / "results.json", {k: v for k, v in read_json(source / "results.json").items()
                                          if k in {step.result for step in needed}})
    write_json(record_path(run.out), {**run.record, "branched_from": {
        "run": str(source.resolve()), "up_to": run.script,
        "sha256": {p.name: sha256(p) for p in checked if p.suffix == ".pt"}}})
    print(f"branched {run.out} from {source}: reusing {', '.join(p.name for p in checked)}", flush=True)


def _checked_sources(source: Path, steps: tuple[Phase, ...], record: dict[str, Any]) -> list[Path]:
    """The files and folders of ``steps`` in ``source`` that a branch links: each network ``N<i>.pt`` (with
    its log and curves) and complete LR folder, checked to belong to ``record`` and to each other."""
    for step in steps:
        if step.network:
            weights = source / f"{step.network}.pt"
            if not weights.exists():
                raise UserError(f"--from {source}: {weights.name} is missing; run {step.script} there first, or "
                                f"branch from an earlier phase")
            check_recorded_with(weights, load_checkpoint(weights).get("meta", {}), record, source)
        if step.writes:
            check_lr_folder(source, step.writes, record, f"--from {source}", "there")
    return [path for step in steps for path in outputs(step, source, reused=True)]


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


def start(run: Run) -> bool:
    """The start of every phase script, as ``run.plan`` says: print the settings and where they came from
    (``--dry-run``: and what would happen, then stop); ``--from``: branch; ``--redo``: archive. False when
    there is nothing to train (already done, or a dry run)."""
    plan, info = run.plan, run.dist
    if info.is_main:
        print(run.header, flush=True)
    if plan.action == "dry-run":
        print(plan.message, flush=True)
        return False
    for due, write in ((plan.branch is not None, lambda: branch(run)),
                       (plan.archive, lambda: archive(run.out, run.script, plan.message))):
        if due:
            with run_lock_of_all_ranks(run.out, info):
                if info.is_main:
                    write()
                barrier(info)
    if plan.action == "skip":
        if info.is_main:
            print(plan.message, flush=True)
        return False
    return True
