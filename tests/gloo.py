"""Two real gloo ranks, for the tests of what the ranks of a torchrun job do together: start them, join
them into one group, and let them leave."""
from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import torch.distributed as dist
import torch.multiprocessing as mp


def run_two_ranks(worker: Callable[..., None], *args: Any) -> None:
    """``worker(rank, port, *args)`` in two spawned processes; ``port`` is free for their group (other test
    runs on this machine may hold the usual ones)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.start_processes(worker, args=(port, *args), nprocs=2, start_method="spawn")


def join(rank: int, port: int) -> None:
    """This worker's place in the two-rank gloo group on ``port``."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)


def leave() -> None:
    """End the group and the process, once what the test reads is written. Without the interpreter's
    teardown: once, on a loaded 2-core CI machine, a rank aborted there ("terminate called without an
    active exception", a C++ thread of the finished group still joinable) after its results were complete."""
    dist.destroy_process_group()
    os._exit(0)
