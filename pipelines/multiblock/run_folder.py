"""The multiblock run folder: which script makes which file, LR_<i> folders and their checks, block records."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from core.checkpoint import check_meta, load_checkpoint, load_weights
from core.dist import DistInfo
from core.errors import UserError
from core.runs import read_json, sha256, write_json
from core.settings import RunContext
from data.pair_layouts import PairSource, find_pairs, pair_set_name
from data.paired import Pair, lr_level_dir, pairs_with_lr_folder
from models.rcan import RESBLOCKS, Block
from pipelines.multiblock import chain
from pipelines.multiblock.phase_settings import LOCATION, RUN_WIDE
from pipelines.multiblock.run_record import (
    check_data,
    check_recorded_with,
    new_record,
    read_record,
    record_path,
    write_record,
)

LR_SPLITS = ("train", "test")
ARCH = "multiblock-block"
BLOCK_KEYS = ("n_feats", "n_resblocks", "reduction", "end_conv", "resblock")
# What a checkpoint written before a key existed holds: RCAB blocks (RESBLOCK came later).
RECORDED_BEFORE = {"resblock": "rcab"}


def block_kwargs(settings: dict[str, Any]) -> dict[str, Any]:
    return {"n_feats": settings["N_FEATS"], "n_resblocks": settings["N_RESBLOCKS"],
            "reduction": settings["REDUCTION"], "end_conv": settings["END_CONV"],
            "resblock": str(settings["RESBLOCK"]).lower()}


def block_architecture(recorded: dict[str, Any], path: Path) -> dict[str, Any]:
    """The ``Block`` arguments (``BLOCK_KEYS``) that the checkpoint or weights file ``path`` records."""
    found = {**RECORDED_BEFORE, **recorded}
    if any(key not in found for key in BLOCK_KEYS):
        raise UserError(f"{path} records no block architecture; it was not written by a phase script")
    if found["resblock"] not in RESBLOCKS:
        raise UserError(f"{path} holds blocks of the design resblock={found['resblock']!r}, which models/rcan.py "
                        f"does not register (RESBLOCKS: {', '.join(RESBLOCKS)}); add it there to load this file")
    return {key: found[key] for key in BLOCK_KEYS}


def pair_source(settings: dict[str, Any]) -> PairSource:
    """The run's pairs as the settings choose them (DATASET, CAMERA, SCALE, DATASET_DIR)."""
    return PairSource(str(settings["DATASET"]).lower(), settings["CAMERA"], settings["SCALE"], settings["DATASET_DIR"])


def test_set_name(ctx: RunContext) -> str:
    """The test set's name in results.json, e.g. RealSR-Canon-x2-test or City100-iPhoneX-test."""
    return f"{pair_set_name(ctx.data_root, pair_source(ctx.settings))}-test"


def dataset_pairs(ctx: RunContext, split: str) -> list[Pair]:
    """The dataset's ``split`` pairs (LR_0, HR), in the layout DATASET names."""
    return find_pairs(ctx.data_root, pair_source(ctx.settings), split)


def run_record(ctx: RunContext, script: str) -> dict[str, Any]:
    """The run's record (run.json), its data checked against the pairs found now; a run without one (the
    first phase) gets a new record of its settings, written by ``save_run_record`` once the run holds its
    folder."""
    pairs = {split: dataset_pairs(ctx, split) for split in LR_SPLITS}
    record = read_record(ctx.out)
    if record:
        check_data(record, ctx.out, ctx.data_root, pairs)
        return record
    return new_record(ctx.settings, RUN_WIDE, LOCATION, ctx.seed, ctx.data_root, pairs, script)


def save_run_record(run_dir: Path, record: dict[str, Any]) -> None:
    if not record_path(run_dir).is_file():
        write_record(run_dir, record)


def level_inputs(ctx: RunContext, level: int, split: str, needed_by: str):
    """Pairs whose LR side is LR_<level> (level 0: the dataset's LR), checked to be complete and current."""
    pairs = dataset_pairs(ctx, split)
    if level == 0:
        return pairs
    require_lr_folder(ctx.out, level, needed_by)
    return pairs_with_lr_folder(pairs, lr_level_dir(ctx.out, level, split))


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


def write_settings(ctx: RunContext, name: str, dist_info: DistInfo) -> None:
    if dist_info.is_main:
        path = ctx.out / "settings.json"
        everything = read_json(path)
        everything[name] = {**ctx.settings, "seed": ctx.seed, "data": str(ctx.data_root),
                            "world_size": dist_info.world_size, "command": ctx.command}
        write_json(path, everything)
