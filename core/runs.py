"""The run folder: settings.json, results.json (merged, never clobbered) and the sweep table results.csv."""
from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from core.atomic import atomic_write
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


def update_results(run_dir: Path, entry: dict[str, Any]) -> dict:
    """Merge ``entry``'s top-level keys (e.g. ``{"phase2": {...}}``) into ``results.json``; return the whole."""
    path = run_dir / "results.json"
    results = read_json(path)
    results.update(entry)
    write_json(path, results)
    return results


def append_results_row(csv_path: Path, row: dict[str, Any]) -> None:
    """Append one run (settings and scores) to a sweep table, widening its header when new columns appear."""
    rows: list[dict[str, Any]] = []
    header: list[str] = []
    if csv_path.exists():
        with csv_path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    header += [name for name in row if name not in header]
    rows.append({name: row.get(name, "") for name in header})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(csv_path, buffer.getvalue())
