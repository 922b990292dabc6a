"""The multiblock run folder: its record (``run.json``), the LR_<i> folders and their checks, block
checkpoints, settings.json.

``run.json`` is the run-wide configuration, recorded once by the first phase and checked by every phase: the
run-wide settings (``phase_settings.RUN_WIDE`` and the dataset folder name), the seed, and a fingerprint of the
data: the names and byte sizes of every train and test pair file, so the same pairs match wherever the folder
has moved, while other pairs (another camera, scale, a re-made data set) do not. The same record goes into
every ``N<i>.pt`` (``meta["run"]``) and ``LR_<i>/manifest.json`` (``"run"``).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.checkpoint import check_meta, load_checkpoint, load_weights
from core.errors import UserError
from core.runs import read_json, sha256, write_json
from data.pair_layouts import PairSource
from data.paired import Pair
from models.blocks import RESBLOCKS, recorded_block_kwargs
from models.rcan import Block
from pipelines.multiblock import chain

if TYPE_CHECKING:
    from pipelines.multiblock.resolve import Run


def record_path(run_dir: Path) -> Path:
    return Path(run_dir) / "run.json"


def read_record(run_dir: Path) -> dict[str, Any]:
    """The run's record, or ``{}`` when the folder has none (yet)."""
    return find_record(run_dir)[0]


def find_record(run_dir: Path) -> tuple[dict[str, Any], Path]:
    """(record, the file it was read from): run.json, else the record inside the first checkpoint that has
    one (a folder holding copied checkpoints only), else ``({}, run.json)``."""
    path = record_path(run_dir)
    if path.is_file():
        return read_json(path), path
    for checkpoint in (Path(run_dir) / f"{network}.pt" for network in chain.NETWORKS):  # each has meta["run"]
        record = load_checkpoint(checkpoint).get("meta", {}).get("run") if checkpoint.is_file() else None
        if record:
            return record, checkpoint
    return {}, path


def data_fingerprint(pairs: dict[str, list[Pair]]) -> str:
    """SHA-256 of every pair's split, name and HR/LR byte sizes (not their paths: a moved folder matches)."""
    digest = hashlib.sha256()
    for split in sorted(pairs):
        for pair in pairs[split]:
            line = f"{split}/{pair.name}/{pair.hr_path.stat().st_size}/{pair.lr_path.stat().st_size}\n"
            digest.update(line.encode("utf-8"))
    return digest.hexdigest()


def new_record(settings: dict[str, Any], names: tuple[str, ...], location: tuple[str, ...], seed: int,
               data_root: Path, pairs: dict[str, list[Pair]], script: str) -> dict[str, Any]:
    """The record of a run started now; ``location`` names settings kept as defaults only (a folder name)."""
    return {"recorded_by": script, "settings": {name: settings[name] for name in names}, "seed": seed,
            "location": {name: settings[name] for name in location},
            "data": {"fingerprint": data_fingerprint(pairs), "root": str(data_root),
                     **{f"{split}_pairs": len(found) for split, found in sorted(pairs.items())}}}


def check_data(record: dict[str, Any], run_dir: Path, data_root: Path, pairs: dict[str, list[Pair]]) -> None:
    """Refuse pairs other than the ones the run was recorded with (one line, both fingerprints)."""
    recorded = record.get("data", {})
    fingerprint = data_fingerprint(pairs)
    if recorded.get("fingerprint") not in (None, fingerprint):
        counts = ", ".join(f"{len(found)} {split}" for split, found in sorted(pairs.items()))
        raise UserError(f"the pairs under {data_root} ({counts}; fingerprint {fingerprint[:12]}) differ from "
                        f"the ones recorded in {record_path(run_dir)} ({recorded.get('train_pairs')} train, "
                        f"{recorded.get('test_pairs')} test under {recorded.get('root')}; fingerprint "
                        f"{recorded['fingerprint'][:12]}); pass --data with the run's pairs, or another --out")


def check_recorded_with(path: Path, recorded_in: dict[str, Any], record: dict[str, Any], run_dir: Path) -> None:
    """Refuse a checkpoint or LR folder whose embedded run record differs from the run folder's."""
    theirs = recorded_in.get("run")
    if not theirs or not record:
        return
    other, mine = theirs.get("settings", {}), record.get("settings", {})
    checks = [(f"{key}=", other.get(key), mine.get(key)) for key in sorted({*other, *mine})]
    fingerprints = [str(r.get("data", {}).get("fingerprint"))[:12] for r in (theirs, record)]
    checks += [("seed ", theirs.get("seed"), record.get("seed")), ("data fingerprint ", *fingerprints)]
    for what, made, recorded in checks:
        if made != recorded:
            raise UserError(f"{path} was made with {what}{made!r} but {record_path(run_dir)} records "
                            f"{what}{recorded!r}; it belongs to another run: rerun the phase that makes it")


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


def record_start(run: Run, name: str) -> None:
    """What a phase that trains network ``name`` writes first (the main rank; under the run's lock): the run
    record when the folder has none yet, and its section of settings.json."""
    if not run.dist.is_main:
        return
    if not record_path(run.out).is_file():
        write_json(record_path(run.out), run.record)
    path = run.out / "settings.json"
    everything = read_json(path)
    everything[name] = {**run.settings, "seed": run.seed, "data": str(run.data_root),
                        "world_size": run.dist.world_size, "command": run.command}
    write_json(path, everything)


def check_lr_folder(run_dir: Path, level: int, record: dict[str, Any], who: str, fix: str) -> None:
    """LR_<level>/ of ``run_dir``: complete, made by the network checkpoint beside it as it is now, of the run
    ``record``. A refusal opens with ``who`` (a script, ``--from RUN``) and ends with the script to run and
    where (``fix``: 'with the same --out', 'there')."""
    writer, folder = chain.writer(level), run_dir / f"LR_{level}"
    weights, manifest = run_dir / f"{writer.lr_maker}.pt", read_json(folder / "manifest.json")
    if not weights.exists():
        raise UserError(f"{who} needs {weights} and LR_{level}/; run {' and '.join(chain.makers(level))} first {fix}")
    if not manifest.get("complete"):
        raise UserError(f"{who} needs a complete LR_{level}/ in {run_dir}; run {writer.script} first {fix}")
    if manifest.get("checkpoint_sha256") != sha256(weights):
        raise UserError(f"{who}: LR_{level}/ in {run_dir} was made by an older {weights.name}; rerun {writer.script} "
                        f"{fix}")
    check_recorded_with(folder / "manifest.json", manifest, record, run_dir)


def load_block(path: Path, clamp: bool, record: dict[str, Any] | None = None) -> Block:
    """A block rebuilt from the architecture its checkpoint records (of the run ``record``, when given)."""
    state = load_checkpoint(path)
    check_meta(state, path, arch=ARCH)
    if record:
        check_recorded_with(path, state.get("meta", {}), record, path.parent)
    block = Block(**block_architecture(state.get("meta", {}), path), clamp=clamp)
    load_weights(block, state, path)
    return block
