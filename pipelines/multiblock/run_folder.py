"""The multiblock run folder: LR_<i> folders and their checks, block records, settings.json."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.checkpoint import check_meta, load_checkpoint, load_weights
from core.errors import UserError
from core.runs import read_json, sha256, write_json
from data.pair_layouts import PairSource
from data.paired import Pair, lr_level_dir, pairs_with_lr_folder
from models.blocks import RESBLOCKS, recorded_block_kwargs
from models.rcan import Block
from pipelines.multiblock import chain
from pipelines.multiblock.run_record import check_recorded_with, read_record, record_path, write_record

if TYPE_CHECKING:
    from pipelines.multiblock.resolve import Run

LR_SPLITS = ("train", "test")
ARCH = "multiblock-block"
# What a checkpoint written before a key existed holds: RCAB blocks (RESBLOCK came later). A residual block's
# own setting added later takes its declared default (models.blocks.recorded_block_kwargs).
RECORDED_BEFORE = {"resblock": "rcab"}


def block_architecture(recorded: dict[str, Any], path: Path) -> dict[str, Any]:
    """The ``Block`` arguments (``models.blocks.block_kwargs``) that the checkpoint or weights file ``path``
    records."""
    found = {**RECORDED_BEFORE, **recorded}
    if found["resblock"] not in RESBLOCKS:
        raise UserError(f"{path} holds blocks of the design resblock={found['resblock']!r}, which models/blocks/ "
                        f"does not register (RESBLOCKS: {', '.join(RESBLOCKS)}); add it there to load this file")
    try:
        return recorded_block_kwargs(found)
    except KeyError:
        raise UserError(f"{path} records no block architecture; it was not written by a phase script") from None


def pair_source(settings: dict[str, Any]) -> PairSource:
    """The run's pairs as the settings choose them (DATASET, CAMERA, SCALE, DATASET_DIR)."""
    return PairSource(str(settings["DATASET"]).lower(), settings["CAMERA"], settings["SCALE"], settings["DATASET_DIR"])


def lr_inputs(pairs: list[Pair], run_dir: Path, level: int, split: str) -> list[Pair]:
    """The dataset's ``split`` pairs with LR_<level> as their LR side (level 0: the dataset's LR)."""
    return pairs_with_lr_folder(pairs, lr_level_dir(run_dir, level, split)) if level else pairs


def record_start(run: Run, name: str) -> None:
    """What a phase that trains network ``name`` writes first (the main rank; under the run's lock): the run
    record when the folder has none yet, and its section of settings.json."""
    if not run.dist.is_main:
        return
    if not record_path(run.out).is_file():
        write_record(run.out, run.record)
    path = run.out / "settings.json"
    everything = read_json(path)
    everything[name] = {**run.settings, "seed": run.seed, "data": str(run.data_root),
                        "world_size": run.dist.world_size, "command": run.command}
    write_json(path, everything)


def require_lr_folder(run_dir: Path, level: int, needed_by: str) -> None:
    """LR_<level>/ complete, made by the current N<level>.pt, for the run recorded in run.json."""
    writer = chain.writer(level)
    weights = run_dir / f"{writer.lr_maker}.pt"
    manifest = read_json(run_dir / f"LR_{level}" / "manifest.json")
    first = " and ".join(chain.makers(level))
    if not weights.exists():
        raise UserError(f"{needed_by} needs {weights} and LR_{level}/ in {run_dir}; run {first} first "
                        f"with the same --out")
    if not manifest.get("complete"):
        raise UserError(f"{needed_by} needs a complete LR_{level}/ in {run_dir}; run {writer.script} "
                        "first with the same --out")
    if manifest.get("checkpoint_sha256") != sha256(weights):
        raise UserError(f"LR_{level}/ in {run_dir} was made by an older {weights.name}; rerun "
                        f"{writer.script} to regenerate it")
    check_recorded_with(run_dir / f"LR_{level}" / "manifest.json", manifest, read_record(run_dir), run_dir)


def load_block(path: Path, clamp: bool, record: dict[str, Any] | None = None) -> Block:
    """A block rebuilt from the architecture its checkpoint records (of the run ``record``, when given)."""
    state = load_checkpoint(path)
    check_meta(state, path, arch=ARCH)
    if record:
        check_recorded_with(path, state.get("meta", {}), record, path.parent)
    block = Block(**block_architecture(state.get("meta", {}), path), clamp=clamp)
    load_weights(block, state, path)
    return block
