"""The CSV tables: training curves (one row per evaluation, read back for plots) and the sweep table results.csv
(one row per run); each rewritten atomically with the union of its rows' columns."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from core.runs import write_text_atomic


class CsvLog:
    """Append-only ``log.csv``; on resume, rows after the resumed step are dropped so curves stay single."""

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        if resume_step is not None and path.exists():
            with path.open(newline="", encoding="utf-8") as handle:
                self.rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= resume_step]
        self._rewrite()

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self._rewrite()

    def _rewrite(self) -> None:
        write_rows(self.path, self.rows, ["step"])


def write_rows(path: Path, rows: list[dict[str, Any]], header: list[str] | None = None) -> None:
    """``rows`` as CSV, the columns in order of first appearance (``header`` first), written atomically."""
    header = list(header or [])
    for row in rows:
        header += [key for key in row if key not in header]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def append_results_row(csv_path: Path, row: dict[str, Any]) -> None:
    """Append one run (settings and scores) to a sweep table, widening its header when new columns appear."""
    rows: list[dict[str, Any]] = []
    header: list[str] = []
    if csv_path.exists():
        with csv_path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    write_rows(csv_path, [*rows, row], header)


def results_row(run_dir: Path, settings: dict[str, Any], seed: int, metrics: dict[str, dict[str, dict[str, float]]],
                **extra: Any) -> dict[str, Any]:
    """One results.csv row: the run, ``extra`` (e.g. the phase), the seed, every setting, and each metric as
    a ``SET/METHOD/METRIC`` column (rounded to 4 decimals)."""
    row: dict[str, Any] = {"run": str(run_dir), **extra, "seed": seed}
    row.update({k: ",".join(map(str, v)) if isinstance(v, (list, tuple)) else v for k, v in settings.items()})
    for set_name, methods in metrics.items():
        for method, values in methods.items():
            for metric, value in values.items():
                row[f"{set_name}/{method}/{metric}"] = round(value, 4)
    return row


def read_log(path: Path) -> list[dict[str, float]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [{k: float(v) for k, v in row.items() if _is_number(v)} for row in csv.DictReader(handle)]


def _is_number(text: str | None) -> bool:
    try:
        float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True
