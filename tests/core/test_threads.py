"""Single-threaded worker pools: order kept, one PyTorch thread per worker, the caller's setting untouched."""
from __future__ import annotations

import threading

import torch

from core.threads import map_single_threaded, single_threaded_pool


def test_map_keeps_order_and_runs_workers_single_threaded() -> None:
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        seen = map_single_threaded(lambda i: (i, torch.get_num_threads(), threading.current_thread().name),
                                   range(12), torch.device("cpu"))
        assert torch.get_num_threads() == 3  # the caller's setting is put back
    finally:
        torch.set_num_threads(threads)
    assert [i for i, _, _ in seen] == list(range(12))
    assert {n for _, n, _ in seen} == {1}
    assert all(name.startswith("single-threaded") for _, _, name in seen)


def test_one_thread_or_one_item_runs_in_the_caller() -> None:
    threads = torch.get_num_threads()
    caller = threading.current_thread().name
    try:
        torch.set_num_threads(1)
        assert map_single_threaded(lambda i: threading.current_thread().name, range(3), torch.device("cpu")) == \
            [caller] * 3
        torch.set_num_threads(2)
        assert map_single_threaded(lambda i: threading.current_thread().name, [0], torch.device("cpu")) == [caller]
    finally:
        torch.set_num_threads(threads)


def test_pool_is_rebuilt_for_another_thread_count() -> None:
    threads = torch.get_num_threads()
    try:
        two = single_threaded_pool(2)
        assert single_threaded_pool(2) is two
        three = single_threaded_pool(3)
        assert three is not two and three._max_workers == 3
    finally:
        torch.set_num_threads(threads)
