"""A run folder in use stops every torchrun rank with the same line, not only rank 0."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from core.dist import DistInfo
from core.errors import UserError
from core.runs import run_lock, run_lock_of_all_ranks


def worker(rank: int, run_dir: str, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        with run_lock_of_all_ranks(Path(run_dir), DistInfo(rank=rank, world_size=2)):
            outcome = "ran"
    except UserError as err:
        outcome = str(err)
    Path(run_dir, f"rank{rank}.txt").write_text(outcome)
    dist.destroy_process_group()


@pytest.mark.slow
def test_every_rank_stops_when_the_folder_is_in_use(tmp_path: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with run_lock(tmp_path):  # this process holds the folder; the two ranks are other processes
        mp.start_processes(worker, args=(str(tmp_path), port), nprocs=2, start_method="spawn")
    outcomes = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert outcomes[0] == outcomes[1] and f"in use by process {os.getpid()}" in outcomes[0]
