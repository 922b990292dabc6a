"""A run folder in use stops every torchrun rank with the same line, not only rank 0."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.dist import DistInfo
from core.errors import UserError
from core.runs import run_lock, run_lock_of_all_ranks
from tests import gloo


def worker(rank: int, port: int, run_dir: str) -> None:
    gloo.join(rank, port)
    try:
        with run_lock_of_all_ranks(Path(run_dir), DistInfo(rank=rank, world_size=2)):
            outcome = "ran"
    except UserError as err:
        outcome = str(err)
    Path(run_dir, f"rank{rank}.txt").write_text(outcome)
    gloo.leave()


@pytest.mark.slow
def test_every_rank_stops_when_the_folder_is_in_use(tmp_path: Path):
    with run_lock(tmp_path):  # this process holds the folder; the two ranks are other processes
        gloo.run_two_ranks(worker, str(tmp_path))
    outcomes = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    assert outcomes[0] == outcomes[1] and f"in use by process {os.getpid()}" in outcomes[0]
