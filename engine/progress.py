"""Training progress: a bar on a terminal, one plain line per evaluation otherwise, and a log file always.

A run started with nohup or by a batch scheduler gets one line at every evaluation (step/total, stage,
lr, loss, every metric, iterations per second, ETA) on stdout; the same lines are appended to a log file
in the run folder whatever stdout is, so a run's history survives its terminal.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

# Row keys the line formats itself; every other numeric key is printed as a metric, in row order.
_FIXED = ("step", "stage", "lr", "loss", "seconds", "epoch")


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def format_duration(seconds: float) -> str:
    """12s, 3m05s, 2h07m: short enough for a progress line."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def timestamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def format_number(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}" if abs(value) < 1e-2 else f"{value:.4f}"
    return str(value)


class ProgressReporter:
    """Progress of one training run of ``total_steps`` iterations, resumed at ``initial_step``.

    Only the main process (``is_main``) draws, prints or writes. ``log_path`` None writes no file."""

    def __init__(self, total_steps: int, log_path: Path | None, *, is_main: bool = True,
                 stream: TextIO | None = None, initial_step: int = 0, name: str = "train") -> None:
        self.total, self.name, self.is_main = total_steps, name, is_main
        self.stream = stream or sys.stdout
        self.log_path = Path(log_path) if log_path is not None and is_main else None
        self.bar = (tqdm(total=total_steps, initial=min(initial_step, total_steps), file=self.stream,
                         dynamic_ncols=True, leave=False)
                    if is_main and is_terminal(self.stream) else None)
        self._last_step, self._last_time = initial_step, time.perf_counter()

    def advance(self, n_steps: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n_steps)

    def on_eval(self, row: dict[str, Any]) -> str:
        """Report one evaluation row (step, stage, lr, loss, metrics...); returns the line written."""
        now, step = time.perf_counter(), int(row["step"])
        rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
        self._last_step, self._last_time = step, now
        eta = format_duration((self.total - step) / rate) if rate > 0 else "?"
        parts = [f"[{self.name}] step {step}/{self.total} ({100 * step / max(self.total, 1):.1f}%)"]
        if "epoch" in row:
            parts.append(f"epoch={row['epoch']:.2f}")
        parts += [f"{key}={format_number(row[key])}" for key in ("stage", "lr", "loss") if key in row]
        parts += [f"{key}={format_number(value)}" for key, value in row.items()
                  if key not in _FIXED and isinstance(value, (int, float))]
        parts.append(f"{rate:.3g} it/s, ETA {eta}")
        line = " ".join(parts)
        if self.bar is not None:
            shown = {key: format_number(value) for key, value in row.items()
                     if key == "loss" or (key not in _FIXED and isinstance(value, (int, float)))}
            self.bar.set_postfix(shown, refresh=True)
            self.log_only(line)
        else:
            self.message(line)
        return line

    def message(self, text: str) -> None:
        """Any other line (resuming, early stop, ...): on stdout (above the bar) and in the log file."""
        if not self.is_main:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(f"{timestamp()} {text}", file=self.stream, flush=True)
        self.log_only(text)

    def log_only(self, text: str) -> None:
        """A line (or lines) for the log file only, e.g. the settings a script has already printed."""
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as handle:
                handle.write(f"{timestamp()} {text}\n")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> ProgressReporter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
