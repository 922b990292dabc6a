"""torchrun / DistributedDataParallel helpers. A plain ``python script.py`` is a world of size one.

Under ``torchrun --nproc_per_node=N`` every rank draws the same global batch (sampling is a pure function of
seed and step) and trains on its contiguous slice of it, so N ranks with a per-rank batch of B/N follow the
same maths as one process with batch B. Only rank 0 writes files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun set up (env RANK/WORLD_SIZE), pick this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank, world_size, local_rank), device


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shard_range(total: int, info: DistInfo) -> range:
    """The indices of ``range(total)`` this rank handles (contiguous, sizes differ by at most one)."""
    base, extra = divmod(total, info.world_size)
    start = info.rank * base + min(info.rank, extra)
    return range(start, start + base + (1 if info.rank < extra else 0))


def broadcast_flag(flag: bool, info: DistInfo) -> bool:
    """True on every rank if it is True on any rank (used for stop requests)."""
    if not info.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
