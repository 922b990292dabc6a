"""Training curves as data: one CSV row per evaluation, rewritten atomically, read back for plots."""
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
        header: list[str] = []
        for row in self.rows:
            header += [key for key in row if key not in header]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=header or ["step"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.path, buffer.getvalue())


def read_log(path: Path) -> list[dict[str, float]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [{k: float(v) for k, v in row.items() if _is_number(v)} for row in csv.DictReader(handle)]


def _is_number(text: str | None) -> bool:
    try:
        float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True
