"""Progress that shows in a terminal and in a batch job's log alike.

tqdm hides its bar when stdout is not a terminal (nohup, a batch scheduler), which leaves a long job's log
empty for hours. These helpers draw a bar on a terminal and otherwise print plain, timestamped lines.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

from tqdm import tqdm

T = TypeVar("T")


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


def progress_iter(items: Iterable[T], desc: str, *, total: int | None = None, stream: TextIO | None = None,
                  every_s: float = 30.0, enabled: bool = True) -> Iterator[T]:
    """Yield ``items``, showing progress: a tqdm bar on a terminal, else a plain line after the first item,
    then at most every ``every_s`` seconds, and after the last (``desc: 12/40 (1.52/s, ETA 18s)``).
    ``enabled=False`` (e.g. on a non-main rank) shows nothing."""
    stream = stream or sys.stdout
    total = total if total is not None else len(items) if hasattr(items, "__len__") else None
    if not enabled:
        yield from items
        return
    if is_terminal(stream):
        yield from tqdm(items, desc=desc, total=total, file=stream, dynamic_ncols=True, leave=False)
        return
    started = last = time.perf_counter()
    for done, item in enumerate(items, 1):
        yield item
        now = time.perf_counter()
        if done == 1 or done == total or now - last >= every_s:
            last = now
            rate = done / max(now - started, 1e-9)
            of = f"/{total}" if total is not None else ""
            eta = f", ETA {format_duration((total - done) / rate)}" if total is not None and done < total else ""
            print(f"{timestamp()} {desc}: {done}{of} ({rate:.3g}/s{eta})", file=stream, flush=True)
