"""Worker threads whose PyTorch operators run single-threaded, for independent pieces of work (the strips
of a frame, the images of a benchmark set): one piece per core with no synchronisation inside an operator
beats splitting every small operator across the cores, and degrades gracefully when other processes share
them (a parallel operator waits for its slowest thread at every barrier; its idle OpenMP threads spin).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")
_POOL: tuple[int, ThreadPoolExecutor] | None = None
_LOCK = threading.Lock()


def single_threaded_pool(threads: int) -> ThreadPoolExecutor:
    """A pool of ``threads`` workers, each with one PyTorch thread; one pool per process, rebuilt when the
    count changes. ``torch.set_num_threads`` sets a per-thread OpenMP limit plus a process-wide default that
    new threads copy: each worker sets itself to 1, and the caller's setting is put back once they exist."""
    global _POOL
    with _LOCK:
        if _POOL is None or _POOL[0] != threads:
            if _POOL is not None:
                _POOL[1].shutdown(wait=False)
            ready = threading.Barrier(threads + 1)
            caller = torch.get_num_threads()

            def single_threaded() -> None:
                torch.get_num_threads()  # initialise this thread's PyTorch thread state first
                torch.set_num_threads(1)

            pool = ThreadPoolExecutor(threads, thread_name_prefix="single-threaded", initializer=single_threaded)
            for _ in range(threads):
                pool.submit(ready.wait)
            ready.wait()
            torch.set_num_threads(caller)
            _POOL = (threads, pool)
        return _POOL[1]


def map_single_threaded(function: Callable[[T], R], items: Iterable[T], device: torch.device,
                        threads: int | None = None) -> list[R]:
    """``[function(item) for item in items]``, in order; on a CPU with several threads (default: PyTorch's
    count) the items run in a ``single_threaded_pool`` of that many workers (``function`` must not share
    mutable state)."""
    items = list(items)
    threads = torch.get_num_threads() if threads is None else threads
    if device.type != "cpu" or threads <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    return list(single_threaded_pool(threads).map(function, items))
