"""The run folder: one writer at a time (``run_lock``), settings.json and results.json (merged, never
clobbered). The sweep table results.csv is ``engine.csv_log``'s."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.atomic import atomic_write, guard_folder
from core.dist import DistInfo, from_every_rank, from_main
from core.errors import UserError


def prepare_run_dir(path: Path) -> Path:
    """Create the run folder and prove it is writable, before any long work starts."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as err:
        raise UserError(f"cannot write to run folder {path} ({err.strerror}); choose another --out") from None
    return path


def check_outputs(out: Path, pairs: list[tuple[Path, Path]], overwrite: bool) -> None:
    """Before anything is written, for commands that write one file per input into ``out``: ``pairs`` of
    (input, output file). Refused in one line naming the files: ``out`` being a file, two inputs for one
    output, an output that would replace an input, and (without ``overwrite``) an output that exists."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; name a folder for the outputs")
    claimed: dict[Path, Path] = {}
    inputs = {source.resolve() for source, _ in pairs}
    for source, target in pairs:
        if target in claimed:
            raise UserError(f"{claimed[target]} and {source} would both be written to {target}; rename one, or "
                            "run them with different --out")
        if target.resolve() in inputs:
            raise UserError(f"writing {target} would replace the input {target}; choose another --out")
        if target.exists() and not overwrite:
            raise UserError(f"{target} already exists; pass --overwrite to replace it, or choose another --out")
        claimed[target] = source


def setting_changes(recorded: dict[str, Any], now: dict[str, Any], names: list[str]) -> str:
    """The ``names`` whose values differ, as ``NAME=old there, new now, ...`` ('' when none); a name the record
    lacks (a setting newer than the run) is not compared."""
    def normal(value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value

    return ", ".join(f"{key}={recorded[key]!r} there, {now[key]!r} now" for key in names
                     if key in recorded and key in now and normal(recorded[key]) != normal(now[key]))


LOCK_NAME = "run.lock"
_held: dict[Path, tuple[int, int]] = {}  # run folder -> (open lock file descriptor, nesting depth)


@contextlib.contextmanager
def run_lock(path: Path) -> Iterator[Path]:
    """Hold the run folder (created if needed, see ``prepare_run_dir``) for this process: an exclusive
    ``flock`` on ``<path>/run.lock``, which holds the holder's PID. A second process is refused with one line
    naming the folder and that PID. The OS drops the lock when its process ends, however it ends, so a
    killed run never blocks ``--resume``. Nested use in one process (phase3.py trains, then regenerates)
    is allowed. Take it after the inputs are checked: a refused start then writes nothing."""
    key = Path(os.path.abspath(path))
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
    else:
        prepare_run_dir(path)
        fd = os.open(key / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 256, 0).decode("utf-8", "replace").split()
            os.close(fd)
            where = f" on {holder[1]}" if len(holder) > 1 else ""
            raise UserError(f"run folder {path} is in use by process {holder[0] if holder else 'unknown'}{where} "
                            "(another run writes there); wait for it to end, or choose another --out") from None
        os.ftruncate(fd, 0)
        # PID, host and a token no other holder has: ranks on other nodes read it to prove they see this folder
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()} {uuid.uuid4().hex}\n".encode(), 0)
        _held[key] = (fd, 1)
        guard_folder(key, True)
    try:
        yield path
    finally:
        fd, depth = _held[key]
        if depth > 1:
            _held[key] = (fd, depth - 1)
        else:
            del _held[key]
            guard_folder(key, False)
            os.close(fd)  # releases the lock; the file stays (removing it would race with a new holder)


@contextlib.contextmanager
def run_lock_of_all_ranks(path: Path, info: DistInfo) -> Iterator[Path]:
    """``run_lock`` taken by rank 0 for the whole torchrun job, its verdict sent to every rank: when the
    folder is in use, every rank stops with the same line instead of waiting for rank 0 in a collective.

    Every rank then reads the lock file rank 0 just wrote: a rank that cannot see it (a node whose run
    folder is not on the file system rank 0 writes to) stops the job on every rank, before any training,
    since the ranks would read different checkpoints and LR folders."""
    with contextlib.ExitStack() as stack:
        refusal, token = None, None
        if info.is_main:
            try:
                stack.enter_context(run_lock(path))
                token = _lock_text(path)
            except UserError as err:
                refusal = str(err)
        refusal, token = from_main((refusal, token), info)
        if refusal is not None:
            raise UserError(refusal)
        blind = [rank for rank, seen in enumerate(from_every_rank(_lock_text(path) == token, info)) if not seen]
        if blind:
            raise UserError(f"rank(s) {', '.join(map(str, blind))} do not see the run folder {path} that rank 0 "
                            "writes; every node of a multi-node run needs the run folder on one shared file "
                            "system (docs/running.md: Several GPUs)")
        yield path


def _lock_text(path: Path) -> str | None:
    try:
        return (Path(path) / LOCK_NAME).read_text(encoding="utf-8")
    except OSError:
        return None


def write_text_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def write_json(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON ({err}); fix or remove it") from None


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks): which checkpoint made what."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def update_results(run_dir: Path, entry: dict[str, Any]) -> dict:
    """Merge ``entry``'s top-level keys (e.g. ``{"phase2": {...}}``) into ``results.json``; return the whole."""
    path = run_dir / "results.json"
    results = read_json(path)
    results.update(entry)
    write_json(path, results)
    return results
