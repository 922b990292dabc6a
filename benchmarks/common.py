"""What every benchmark shares: the machine description, interleaved timing, the fp32 matmul peak, peak
memory, and JSON output. Benchmarks are scripts, not tests: ``python benchmarks/<name>.py [--quick]``.

Timing: candidates are run in turn (A B A B ...) so that a change in the machine's load hits them alike,
with a short untimed pause before each run (PyTorch's OpenMP workers spin for a while after a call;
measured on the AVX2 EPYC, ONNX Runtime run right after eager PyTorch took 79 ms instead of 72). Each
reports its median and minimum wall-clock time plus the process CPU time (all threads). The load average
before and after is part of every result, because on a shared machine it changes the numbers.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import gc
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python benchmarks/x.py` from anywhere
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from engine.progress import format_duration  # noqa: E402


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats (a smoke run)")
    p.add_argument("--threads", type=int, default=None,
                   help="PyTorch intra-op threads (default: PyTorch's default for this machine)")
    p.add_argument("--json", type=Path, default=None, help="also write the JSON result to this file")
    return p


def start(args: argparse.Namespace) -> dict[str, Any]:
    """Apply ``--threads`` and describe the machine and the run."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": machine(), "load_average_before": _loadavg()}


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpu": platform.processor() or platform.machine()}
    with contextlib.suppress(OSError):
        fields = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        flags = set(fields.get("flags", "").split())
        info["cpu"] = fields.get("model name", info["cpu"])
        info["cpu_family_model"] = f"{fields.get('cpu family', '?')}/{fields.get('model', '?')}"
        info["simd"] = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    info.update({"logical_cpus": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                 "onednn": torch.backends.mkldnn.is_available(), "python": platform.python_version()})
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def finish(result: dict[str, Any], args: argparse.Namespace) -> None:
    result["load_average_after"] = _loadavg()
    text = json.dumps(result, indent=2)
    print(text, flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


# ------------------------------------------------------------------------------------ timing
PROGRESS_EVERY_S = 10.0
PAUSE_S = 0.02  # before each timed run: the previous candidate's idle threads stop spinning


def progress(label: str, done: int, total: int, started: float) -> None:
    """One progress line on stderr (the JSON result keeps stdout): 'label: done/total, elapsed, ETA'."""
    elapsed = time.perf_counter() - started
    eta = elapsed / done * (total - done) if done else 0.0
    say(f"{label}: {done}/{total}, {format_duration(elapsed)} elapsed, ETA {format_duration(eta)}")


def say(line: str) -> None:
    """A progress line on stderr, named by the benchmark."""
    print(f"[{Path(sys.argv[0]).stem}] {line}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def heartbeat(label: str, expected_s: float) -> Iterator[None]:
    """Progress lines while one long call runs (one every ``PROGRESS_EVERY_S`` seconds): the time elapsed and
    an ETA from ``expected_s``, an estimate made before the call (the line says so), or 'over the estimate'."""
    done = threading.Event()
    began = time.perf_counter()

    def beat() -> None:
        while not done.wait(PROGRESS_EVERY_S):
            elapsed = time.perf_counter() - began
            left = (f"ETA ~{format_duration(expected_s - elapsed)} (estimated)" if elapsed < expected_s
                    else "over the estimate")
            say(f"{label}: {format_duration(elapsed)} elapsed, {left}")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def interleaved(candidates: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1,
                label: str = "timing") -> dict[str, dict]:
    """Run every candidate ``warmup`` times, then ``repeats`` rounds of one run each, in turn (a progress line
    after the warm-up, then at most one every ``PROGRESS_EVERY_S`` seconds and at the end)."""
    began = time.perf_counter()
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    progress(f"{label} ({', '.join(candidates)}) warmed up; rounds", 0, repeats, began)
    shown = time.perf_counter()
    wall: dict[str, list[float]] = {name: [] for name in candidates}
    cpu: dict[str, list[float]] = {name: [] for name in candidates}
    for round_index in range(repeats):
        for name, fn in candidates.items():
            time.sleep(PAUSE_S)
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
        if round_index + 1 == repeats or time.perf_counter() - shown >= PROGRESS_EVERY_S:
            progress(f"{label}, rounds", round_index + 1, repeats, began)
            shown = time.perf_counter()
    return {name: {"median_s": statistics.median(wall[name]), "min_s": min(wall[name]),
                   "cpu_median_s": statistics.median(cpu[name]), "runs": repeats} for name in candidates}


def matmul_gflops(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """fp32 ``n x n`` matrix product throughput, GFLOP/s (2 n^3 per product): median and best run."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    times = interleaved({"mm": lambda: torch.mm(a, b)}, repeats, label="matmul peak")["mm"]
    flops = 2.0 * n**3
    return {"median": flops / times["median_s"] / 1e9, "best": flops / times["min_s"] / 1e9, "n": n}


def rounded(value: Any, digits: int = 4) -> Any:
    """Floats to ``digits`` significant digits; NaN and infinities to None (JSON has no NaN)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


# ------------------------------------------------------------------------------------ memory
def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS, so the next RSS baseline is honest."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRSS:
    """Peak resident memory of this process while the block runs, sampled every ``interval`` seconds."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.baseline_mb = self.peak_mb = 0.0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRSS:
        release_memory()
        self.baseline_mb = self.peak_mb = rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, rss_mb())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, rss_mb())

    @property
    def extra_mb(self) -> float:
        return self.peak_mb - self.baseline_mb
