"""Training progress: a tqdm bar on a terminal; otherwise (nohup, a batch scheduler) one plain line per
evaluation. The same lines always go to a text log in the run folder when one is named."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm


def format_row(row: dict[str, Any], total: int, rate: float) -> str:
    """'step 500/15000 clamp_high lr 1e-04 loss 0.0213 val_psnr 30.12 test_psnr 29.80 3.1 it/s ETA 1:17:58'."""
    parts = [f"step {int(row['step'])}/{total}", str(row.get("stage", ""))]
    if "lr" in row:
        parts.append(f"lr {row['lr']:.3g}")
    if "loss" in row:
        parts.append(f"loss {row['loss']:.4g}")
    parts += [f"{key} {value:.3f}" for key, value in row.items() if "psnr" in key and isinstance(value, float)]
    remaining = (total - int(row["step"])) / rate if rate > 0 else float("nan")
    eta = time.strftime("%H:%M:%S", time.gmtime(remaining)) if remaining == remaining else "?"
    parts += [f"{rate:.3g} it/s", f"ETA {eta}"]
    return " ".join(part for part in parts if part)


class ProgressReporter:
    def __init__(self, total: int, log_path: Path | None, *, is_main: bool, initial: int = 0,
                 stream: TextIO | None = None) -> None:
        self.total, self.log_path, self.is_main = total, log_path, is_main
        self.stream = stream or sys.stdout
        self.terminal = is_main and self.stream.isatty()
        self.bar = tqdm(total=total, initial=initial, file=self.stream, dynamic_ncols=True, leave=False,
                        disable=not self.terminal)
        self._since = time.perf_counter()
        self._steps = 0

    def advance(self, steps: int) -> None:
        self._steps += steps
        self.bar.update(steps)

    def on_eval(self, row: dict[str, Any]) -> None:
        if not self.is_main:
            return
        rate = self._steps / max(1e-9, time.perf_counter() - self._since)
        self._since, self._steps = time.perf_counter(), 0
        self.message(format_row(row, self.total, rate))

    def message(self, line: str) -> None:
        if not self.is_main:
            return
        if self.terminal:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)
        if self.log_path is not None:
            with self.log_path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")

    def close(self) -> None:
        self.bar.close()
