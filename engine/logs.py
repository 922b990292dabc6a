"""Training curves: one CSV row per evaluation, and matplotlib plots of loss and validation PSNR."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import matplotlib

from engine.runs import write_text_atomic

matplotlib.use("Agg")
import matplotlib.pyplot as plt


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


def plot_curves(log_path: Path, out_path: Path, x: str = "step", title: str = "") -> None:
    """Training loss and every ``val_*psnr*`` column against ``x`` (step or epoch), side by side."""
    rows = read_log(log_path)
    if not rows:
        return
    psnr_keys = [key for key in rows[-1] if "psnr" in key]
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(10, 4))
    xs = [row.get(x, float("nan")) for row in rows]
    ax_loss.plot(xs, [row.get("loss", float("nan")) for row in rows])
    ax_loss.set(xlabel=x, ylabel="training loss", yscale="log", title="loss")
    for key in psnr_keys:
        ax_psnr.plot(xs, [row.get(key, float("nan")) for row in rows], label=key)
    ax_psnr.set(xlabel=x, ylabel="PSNR (dB)", title="validation")
    if psnr_keys:
        ax_psnr.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
