"""``run.json``: the run-wide configuration of a multiblock run, recorded once and checked by every phase.

It holds the run-wide settings (``phase_settings.RUN_WIDE`` and the dataset folder name), the seed, and a
fingerprint of the data: the names and byte sizes of every train and test pair file, so the same pairs
match wherever the folder has moved, while other pairs (another camera, scale, a re-made data set) do not.
The same record goes into every ``N<i>.pt`` (``meta["run"]``) and ``LR_<i>/manifest.json`` (``"run"``).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from core.checkpoint import load_checkpoint
from core.errors import UserError
from core.runs import read_json, write_json
from data.paired import Pair
from pipelines.multiblock import chain

RECORD_NAME = "run.json"
CHECKPOINTS = tuple(f"{network}.pt" for network in chain.NETWORKS)  # each carries the record too (meta["run"])


def record_path(run_dir: Path) -> Path:
    return Path(run_dir) / RECORD_NAME


def read_record(run_dir: Path) -> dict[str, Any]:
    """The run's record, or ``{}`` when the folder has none (yet)."""
    return find_record(run_dir)[0]


def find_record(run_dir: Path) -> tuple[dict[str, Any], Path]:
    """(record, the file it was read from): run.json, else the record inside the first checkpoint that has
    one (a folder holding copied checkpoints only), else ``({}, run.json)``."""
    path = record_path(run_dir)
    if path.is_file():
        return read_json(path), path
    for name in CHECKPOINTS:
        if (Path(run_dir) / name).is_file():
            record = load_checkpoint(Path(run_dir) / name).get("meta", {}).get("run")
            if record:
                return record, Path(run_dir) / name
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
    for key in sorted(set(theirs.get("settings", {})) | set(record.get("settings", {}))):
        mine, other = record["settings"].get(key), theirs["settings"].get(key)
        if mine != other:
            raise UserError(f"{path} was made with {key}={other!r} but {record_path(run_dir)} records "
                            f"{key}={mine!r}; it belongs to another run: rerun the phase that makes it")
    if theirs.get("seed") != record.get("seed"):
        raise UserError(f"{path} was made with seed {theirs.get('seed')} but {record_path(run_dir)} records seed "
                        f"{record.get('seed')}; it belongs to another run: rerun the phase that makes it")
    if theirs.get("data", {}).get("fingerprint") != record.get("data", {}).get("fingerprint"):
        raise UserError(f"{path} was made from other pairs than {record_path(run_dir)} records; it belongs "
                        "to another run: rerun the phase that makes it")


def write_record(run_dir: Path, record: dict[str, Any]) -> None:
    write_json(record_path(run_dir), record)
